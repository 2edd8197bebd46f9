// The search page of `semsearch serve`: a client of the documented JSON API (POST /search,
// GET /health, GET /fields). Plain JavaScript, no dependencies; every server text is put in
// the page as text (textContent), never as HTML.
"use strict";

const TEXT = {
  en: {
    skip: "Skip to results", query: "Search", placeholder: "What are you looking for?",
    go: "Search", mode: "Mode", hybrid: "hybrid (meaning + words)", dense: "dense (meaning)",
    bm25: "bm25 (words)", k: "Hits", filter: "Filter", fields: "Fields you can filter on:",
    results: "Results", sources: (n) => `Sources (${n})`,
    sourcesSome: (shown, n) => `Sources (${shown} of ${n})`,
    searching: "Searching…", none: "No passage matches.",
    found: (n, ms) => `${n} result${n === 1 ? "" : "s"} in ${ms} ms`,
    empty: "Type some words to search for.",
    busy: "The service is busy or its index cannot be used right now; try again in a moment.",
    slow: "The search took longer than the service allows and was stopped; try a simpler query or filter.",
    offline: "The service cannot be reached; is `semsearch serve` still running?",
    failed: (status) => `The search failed (HTTP ${status}).`,
    refused: "The filter was refused (see above); correct it and search again.",
    score: "score", paragraph: (n) => `paragraph ${n}`, page: (n) => `p.${n}`, heading: "under",
    neighbours: "Show neighbouring passages", hideNeighbours: "Hide neighbouring passages",
    noNeighbours: "No neighbouring passages in this document.",
    copy: "Copy citation", copied: (c) => `Copied “${c}”`, copyFailed: "Could not copy.",
    hitLabel: (rank, source) => `Result ${rank}: ${source}`,
    footer: (h) => [h.name, `${h.passages.toLocaleString()} passages`,
      `${h.sources.toLocaleString()} sources`, `generation ${h.generation}`, h.model],
    unknownKeys: "record fields: unknown for this index",
  },
  zh: {
    skip: "跳到结果", query: "搜索", placeholder: "想找什么？", go: "搜索", mode: "模式",
    hybrid: "混合（语义 + 关键词）", dense: "语义", bm25: "关键词（BM25）", k: "结果数",
    filter: "筛选", fields: "可筛选的字段：", results: "搜索结果",
    sources: (n) => `来源（${n}）`, sourcesSome: (shown, n) => `来源（${n} 个中的 ${shown} 个）`,
    searching: "正在搜索…", none: "没有匹配的段落。",
    found: (n, ms) => `${n} 条结果，用时 ${ms} 毫秒`, empty: "请输入要搜索的词语。",
    busy: "服务正忙或索引暂时不可用，请稍后再试。",
    slow: "搜索超出了服务允许的时间，已被中止；请简化查询或筛选条件。",
    offline: "无法连接服务；`semsearch serve` 还在运行吗？",
    failed: (status) => `搜索失败（HTTP ${status}）。`,
    refused: "筛选条件有误（见上方说明），请修改后重新搜索。",
    score: "得分", paragraph: (n) => `第 ${n} 段`, page: (n) => `第 ${n} 页`, heading: "标题",
    neighbours: "显示上下文段落", hideNeighbours: "隐藏上下文段落",
    noNeighbours: "本文档中没有相邻段落。",
    copy: "复制引用", copied: (c) => `已复制“${c}”`, copyFailed: "无法复制。",
    hitLabel: (rank, source) => `第 ${rank} 条：${source}`,
    footer: (h) => [h.name, `${h.passages.toLocaleString()} 个段落`,
      `${h.sources.toLocaleString()} 个来源`, `第 ${h.generation} 代`, h.model],
    unknownKeys: "记录字段：此索引无法列出",
  },
};

const lang = (navigator.languages && navigator.languages[0] || navigator.language || "en")
  .toLowerCase().startsWith("zh") ? "zh" : "en";
const t = TEXT[lang];
const CONTEXT = 2; // neighbouring passages asked for on each side of a hit
const DEFAULTS = { mode: "hybrid", k: "10" };

const $ = (id) => document.getElementById(id);
const form = $("search");
const query = $("q");
const mode = $("mode");
const k = $("k");
const where = $("where");
const whereError = $("where-error");
const statusLine = $("status");
const results = $("results");

let running = null; // the AbortController of the search in flight

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t[node.dataset.i18n];
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t[node.dataset.i18nPlaceholder];
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t[node.dataset.i18nLabel]);
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// The passage text with the server's highlight spans ([start, end) in code points) marked.
function marked(text, spans) {
  const chars = Array.from(text);
  const out = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of spans || []) {
    if (start < at || end > chars.length) continue;
    out.append(chars.slice(at, start).join(""), el("mark", { text: chars.slice(start, end).join("") }));
    at = end;
  }
  out.append(chars.slice(at).join(""));
  return out;
}

function citation(hit) {
  const page = hit.metadata && hit.metadata.page != null ? ` p.${hit.metadata.page}` : "";
  return `${hit.source}:${hit.paragraph}${page}`;
}

function say(message, kind = "") {
  statusLine.textContent = message;
  statusLine.className = `status ${kind}`;
}

function showFilterError(message) {
  whereError.textContent = message;
  whereError.hidden = !message;
  where.setAttribute("aria-invalid", message ? "true" : "false");
}

function meta(hit) {
  const parts = [el("span", { text: t.paragraph(hit.paragraph) })];
  if (hit.metadata && hit.metadata.page != null) {
    parts.push(el("span", { text: t.page(hit.metadata.page) }));
  }
  if (hit.heading) parts.push(el("span", { class: "heading", text: `${t.heading} ${hit.heading}` }));
  for (const [key, value] of Object.entries(hit.metadata || {})) {
    if (key === "page") continue;
    parts.push(el("span", { class: "field" }, el("code", { text: key }), ` ${typeof value === "string" ? value : JSON.stringify(value)}`));
  }
  return el("p", { class: "meta" }, ...parts);
}

function neighbours(hit, id) {
  const box = el("div", { id, class: "context", hidden: "" });
  const passages = hit.context && hit.context.passages || [];
  if (passages.length <= 1) {
    box.append(el("p", { class: "muted", text: t.noNeighbours }));
    return box;
  }
  let heading = hit.heading;
  let covered = -1; // end offset of the text shown so far: a passage inside it adds nothing
  for (const passage of passages) {
    const own = passage.id === hit.id;
    if (!own && passage.end <= covered) continue;
    covered = Math.max(covered, passage.end);
    if (passage.heading && passage.heading !== heading) {
      box.append(el("p", { class: "context-heading", text: passage.heading }));
      heading = passage.heading;
    }
    box.append(el("p", { class: own ? "context-passage own" : "context-passage", "data-id": passage.id },
      el("span", { class: "context-where", text: t.paragraph(passage.paragraph) }), " ",
      marked(passage.text, passage.highlights)));
  }
  return box;
}

function hitItem(hit) {
  const contextId = `context-${hit.rank}`;
  const box = neighbours(hit, contextId);
  const toggle = el("button", {
    type: "button", class: "toggle", "aria-expanded": "false", "aria-controls": contextId,
    text: t.neighbours,
    onclick: () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? t.hideNeighbours : t.neighbours;
      box.hidden = !open;
    },
  });
  const cite = citation(hit);
  const copy = el("button", { type: "button", class: "copy", text: t.copy, onclick: () => copyText(cite) });
  const titleId = `hit-${hit.rank}`;
  return el("li", { class: "hit", "data-id": hit.id },
    el("article", { "aria-labelledby": titleId },
      el("div", { class: "hit-head" },
        el("span", { class: "rank", "aria-hidden": "true", text: String(hit.rank) }),
        el("h2", { id: titleId, class: "source", "aria-label": t.hitLabel(hit.rank, cite) },
          el("span", { text: hit.source }), el("span", { class: "muted", text: `:${hit.paragraph}` })),
        el("span", { class: "score", text: `${t.score} ${hit.score.toFixed(3)}` })),
      meta(hit),
      el("p", { class: "text" }, marked(hit.text, hit.highlights)),
      el("div", { class: "actions" }, toggle, copy),
      box));
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
    } else { // plain http on another address: the old way
      const area = el("textarea", { class: "visually-hidden", readonly: "" });
      area.value = text;
      document.body.append(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      if (!ok) throw new Error("copy refused");
    }
    say(t.copied(text), "ok");
  } catch (_) {
    say(t.copyFailed, "problem");
  }
}

function readForm() {
  return { q: query.value.trim(), mode: mode.value, k: k.value.trim() || DEFAULTS.k, where: where.value.trim() };
}

function urlFor(state) {
  const params = new URLSearchParams();
  params.set("q", state.q);
  params.set("mode", state.mode);
  if (state.k !== DEFAULTS.k) params.set("k", state.k);
  if (state.where) params.set("where", state.where);
  return `/?${params}`;
}

function fillForm(params) {
  query.value = params.get("q") || "";
  mode.value = ["hybrid", "dense", "bm25"].includes(params.get("mode")) ? params.get("mode") : DEFAULTS.mode;
  k.value = params.get("k") || DEFAULTS.k;
  where.value = params.get("where") || "";
}

async function search(state, started) {
  if (running) running.abort();
  showFilterError("");
  if (!state.q) {
    say(t.empty, "problem");
    return;
  }
  const controller = new AbortController();
  running = controller;
  results.setAttribute("aria-busy", "true");
  say(t.searching, "busy");
  const body = { query: state.q, mode: state.mode, k: Number(state.k), highlight: true };
  if (CONTEXT) body.context = CONTEXT;
  if (state.where) body.where = state.where;
  let response, answer;
  try {
    response = await fetch("/search", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify(body), signal: controller.signal,
    });
    answer = await response.json().catch(() => ({}));
  } catch (error) {
    if (controller.signal.aborted) return; // a newer search took over
    finish(controller);
    say(t.offline, "problem");
    return;
  }
  if (controller.signal.aborted) return;
  finish(controller);
  if (!response.ok) { // say why, and show no hits that answered another search
    results.replaceChildren();
    const text = answer && answer.error || "";
    if (response.status === 503) say(`${t.busy} (${text})`, "problem");
    else if (response.status === 504) say(`${t.slow} (${text})`, "problem");
    else if (state.where && /filter|field|where/i.test(text)) {
      showFilterError(text);
      say(t.refused, "problem");
    } else say(text || t.failed(response.status), "problem");
    return;
  }
  results.replaceChildren(...answer.hits.map(hitItem));
  const ms = Math.round(performance.now() - started);
  say(answer.hits.length ? t.found(answer.hits.length, ms) : t.none, answer.hits.length ? "ok" : "");
  document.dispatchEvent(new CustomEvent("semsearch:results", { detail: { ms, hits: answer.hits.length } }));
  loadHealth();
}

function finish(controller) {
  if (running === controller) running = null;
  results.removeAttribute("aria-busy");
}

async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function loadHealth() {
  try {
    const health = await getJSON("/health");
    $("index-name").textContent = health.name || "";
    const parts = t.footer(health);
    if (health.status !== "ok") parts.push(`${health.status}${health.error ? `: ${health.error}` : ""}`);
    $("footer").textContent = parts.filter(Boolean).join(" · ");
  } catch (_) {
    $("footer").textContent = t.offline;
  }
}

function insert(text, caret) {
  const at = where.selectionStart != null ? where.selectionStart : where.value.length;
  const before = where.value.slice(0, at);
  const joiner = before && !/\s$/.test(before) ? " " : "";
  const glue = before.trim() && !/\b(and|or|not)\s*$/.test(before.trim()) ? "and " : "";
  where.value = `${before}${joiner}${glue}${text}${where.value.slice(at)}`;
  const cursor = before.length + joiner.length + glue.length + (caret == null ? text.length : caret);
  where.focus();
  where.setSelectionRange(cursor, cursor);
}

async function loadFields() {
  let answer;
  try {
    answer = await getJSON("/fields");
  } catch (_) {
    return; // the filter box still works: the service says what is wrong on search
  }
  const list = $("field-list");
  const names = answer.fields.map((f) => f.name).concat(answer.metadata || []);
  const numbers = new Set(answer.fields.filter((f) => f.type === "number").map((f) => f.name));
  list.replaceChildren(...names.map((name) => {
    const snippet = numbers.has(name) ? `${name} > ` : `${name} == ""`;
    return el("button", { type: "button", class: "chip", "data-field": name, text: name,
      onclick: () => insert(snippet, numbers.has(name) ? snippet.length : snippet.length - 1) });
  }));
  if (answer.metadata === null) list.append(el("span", { class: "muted", text: ` ${t.unknownKeys}` }));
  if (answer.sources.length) {
    $("sources-summary").textContent = answer.sources.length < answer.source_count
      ? t.sourcesSome(answer.sources.length, answer.source_count) : t.sources(answer.source_count);
    $("source-list").replaceChildren(...answer.sources.map((source) => el("li", {},
      el("button", { type: "button", class: "chip", text: source,
        onclick: () => { where.value = ""; insert(`source == ${JSON.stringify(source)}`); } }))));
    $("sources").hidden = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const started = performance.now();
  const state = readForm();
  const url = urlFor(state);
  if (state.q && `${location.pathname}${location.search}` !== url) history.pushState(null, "", url);
  search(state, started);
});

window.addEventListener("popstate", () => {
  const params = new URLSearchParams(location.search);
  fillForm(params);
  if (query.value) search(readForm(), performance.now());
});

document.addEventListener("keydown", (event) => {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement && document.activeElement.tagName);
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    event.preventDefault();
    query.focus();
    query.select();
  }
});

translate();
loadHealth();
loadFields();
const params = new URLSearchParams(location.search);
fillForm(params);
if (query.value) search(readForm(), performance.now());
else query.focus();
