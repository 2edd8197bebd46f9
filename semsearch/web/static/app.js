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
    busy: "The service is busy right now; try again in a moment.",
    unavailable: "The index cannot be used right now; try again in a moment, or tell whoever runs the service.",
    slow: "The search took longer than the service allows and was stopped; try a simpler query or filter.",
    offline: "The service cannot be reached; is `semsearch serve` still running?",
    failed: (status) => `The search failed (HTTP ${status}).`,
    refused: "The filter was refused (see above); correct it and search again.",
    badFilter: "This filter cannot be used here.", badQuery: "The service refused this query.",
    badK: "Hits must be a whole number from 1 to 1000.", tooLong: "The query is too long.",
    details: "Details:",
    introTitle: "Try one of these", more: "More results",
    help: "Type words or a question and press Enter. Modes: hybrid weighs meaning and words, dense meaning alone, bm25 the exact words. A filter keeps only passages whose fields match, e.g. paragraph > 2 or source == \"a.txt\". Press / to come back to the search box.",
    tryThese: "You could try:",
    withoutFilter: "Search without the filter", tryHybrid: "Try hybrid mode",
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
    busy: "服务正忙，请稍后再试。",
    unavailable: "索引暂时无法使用，请稍后再试，或告知服务的管理者。",
    slow: "搜索超出了服务允许的时间，已被中止；请简化查询或筛选条件。",
    offline: "无法连接服务；`semsearch serve` 还在运行吗？",
    failed: (status) => `搜索失败（HTTP ${status}）。`,
    refused: "筛选条件有误（见上方说明），请修改后重新搜索。",
    badFilter: "这个筛选条件无法使用。", badQuery: "服务拒绝了这个查询。",
    badK: "结果数须为 1 到 1000 之间的整数。", tooLong: "查询太长了。",
    details: "详情：",
    introTitle: "试试这些", more: "更多结果",
    help: "输入词语或问题后按回车。模式：混合同时看语义和关键词，语义只看意思，关键词只找原词。筛选只保留字段符合条件的段落，例如 paragraph > 2 或 source == \"a.txt\"。按 / 键回到搜索框。",
    tryThese: "可以试试：",
    withoutFilter: "去掉筛选条件再搜索", tryHybrid: "改用混合模式",
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
const MAX_K = 1000; // the service's limit on hits
const TITLE = "semsearch";
// Characters that reorder or hide text (bidi overrides, isolates and marks, zero-width and
// C0/C1 controls): in a file name, U+202E makes "invoice\u202efdp.txt" look like
// "invoicetxt.pdf", so names show them as ⟨U+202E⟩ (and sit in <bdi>, so nothing they
// reverse runs into the text around them). ZWJ/ZWNJ stay: they are part of some scripts.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
const CONTROL = new RegExp(`^${CONTROLS.source}$`); // one of them, alone

const $ = (id) => document.getElementById(id);
const form = $("search");
const query = $("q");
const mode = $("mode");
const k = $("k");
const where = $("where");
const whereError = $("where-error");
const statusLine = $("status");
const results = $("results");
const intro = $("intro");
const suggest = $("suggest");
const moreRow = $("more-row");
let focusFrom = null; // after "More results": the rank of the first new hit, to focus it

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

// `name` with its reordering and invisible characters shown as ⟨U+XXXX⟩, isolated in <bdi>.
function visible(name) {
  return String(name).replace(CONTROLS, (c) =>
    `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

// `name` in <bdi>, each control character as a marked ⟨U+XXXX⟩ (so it cannot pass for text).
function isolated(name, props = {}) {
  const parts = String(name).split(new RegExp(`(${CONTROLS.source})`));
  return el("bdi", props, ...parts.filter(Boolean).map((part) => (CONTROL.test(part)
    ? el("span", { class: "control", text: visible(part) }) : part)));
}

// A passage's language, so a screen reader reads it with the right rules whatever the page's
// language: "zh" when at least half its letters are Han characters, "en" when most are Latin
// letters, else null (the page's language applies). Letters only: digits and punctuation do
// not vote. A heuristic, not language identification: Japanese kanji-heavy text counts as zh.
function passageLang(text) {
  const count = (pattern) => (text.match(pattern) || []).length;
  const letters = count(/\p{L}/gu);
  if (!letters) return null;
  if (count(/\p{Script=Han}/gu) * 2 >= letters) return "zh";
  if (count(/\p{Script=Latin}/gu) * 2 > letters) return "en";
  return null;
}

function withLang(props, text) {
  const lang = passageLang(text || "");
  return lang ? { ...props, lang } : props;
}

function citation(hit) {
  const page = hit.metadata && hit.metadata.page != null ? ` p.${hit.metadata.page}` : "";
  return `${hit.source}:${hit.paragraph}${page}`;
}

// The service's own words (English) after the page's sentence, marked as English.
function details(detail) {
  return detail ? [" ", el("span", { class: "details", lang: "en" },
    `${t.details} `, detail)] : [];
}

function say(message, kind = "", detail = "") {
  statusLine.replaceChildren(message, ...details(detail));
  statusLine.className = `status ${kind}`;
}

function showFilterError(message, detail = "") {
  whereError.replaceChildren(message, ...details(detail));
  whereError.hidden = !message;
  where.setAttribute("aria-invalid", message ? "true" : "false");
}

function setTitle(q) {
  document.title = q ? `${q} — ${TITLE}` : TITLE;
}

// The page as first opened: no results, no status, the examples and help.
function blank() {
  if (running) running.abort();
  running = null;
  results.removeAttribute("aria-busy");
  results.replaceChildren();
  showFilterError("");
  say("");
  suggest.hidden = true;
  moreRow.hidden = true;
  intro.hidden = false;
  setTitle("");
}

// Nothing matched: say so, and offer what may find something.
function suggestion(state) {
  const buttons = [];
  if (state.where) {
    buttons.push(el("button", { type: "button", text: t.withoutFilter,
      onclick: () => { where.value = ""; form.requestSubmit(); } }));
  }
  if (state.mode !== "hybrid") {
    buttons.push(el("button", { type: "button", text: t.tryHybrid,
      onclick: () => { mode.value = "hybrid"; form.requestSubmit(); } }));
  }
  if (!buttons.length) return;
  suggest.replaceChildren(el("p", { text: t.tryThese }), ...buttons);
  suggest.hidden = false;
}

function meta(hit) {
  const parts = [el("span", { text: t.paragraph(hit.paragraph) })];
  if (hit.metadata && hit.metadata.page != null) {
    parts.push(el("span", { text: t.page(hit.metadata.page) }));
  }
  if (hit.heading) {
    parts.push(el("span", { class: "heading" }, `${t.heading} `, isolated(hit.heading, withLang({}, hit.heading))));
  }
  for (const [key, value] of Object.entries(hit.metadata || {})) {
    if (key === "page") continue;
    parts.push(el("span", { class: "field" }, el("code", {}, isolated(key)), " ",
      isolated(typeof value === "string" ? value : JSON.stringify(value))));
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
      box.append(el("p", withLang({ class: "context-heading" }, passage.heading), isolated(passage.heading)));
      heading = passage.heading;
    }
    box.append(el("p", withLang({ class: own ? "context-passage own" : "context-passage", "data-id": passage.id }, passage.text),
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
    el("article", { "aria-labelledby": titleId, tabindex: "-1" },
      el("div", { class: "hit-head" },
        el("span", { class: "rank", "aria-hidden": "true", text: String(hit.rank) }),
        el("h2", { id: titleId, class: "source", "aria-label": t.hitLabel(hit.rank, visible(cite)) },
          el("span", { class: "name" }, isolated(hit.source)), el("span", { class: "muted", text: `:${hit.paragraph}` })),
        el("span", { class: "score", text: `${t.score} ${hit.score.toFixed(3)}` })),
      meta(hit),
      el("p", withLang({ class: "text" }, hit.text), marked(hit.text, hit.highlights)),
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
    say(t.copied(visible(text)), "ok");
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
  k.removeAttribute("aria-invalid");
  if (!state.q) {
    say(t.empty, "problem");
    return;
  }
  intro.hidden = true;
  suggest.hidden = true;
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
  if (!response.ok) { // say why in the page's language, by the service's error code
    results.replaceChildren();
    moreRow.hidden = true;
    complain(response.status, answer || {});
    return;
  }
  results.replaceChildren(...answer.hits.map(hitItem));
  const ms = Math.round(performance.now() - started);
  say(answer.hits.length ? t.found(answer.hits.length, ms) : t.none, answer.hits.length ? "ok" : "");
  if (!answer.hits.length) suggestion(state);
  moreRow.hidden = !(answer.hits.length >= Number(state.k) && Number(state.k) < MAX_K);
  if (focusFrom != null) { // "More results": on to the first new hit
    const first = results.children[focusFrom];
    if (first) first.querySelector("article").focus();
    focusFrom = null;
  }
  document.dispatchEvent(new CustomEvent("semsearch:results", { detail: { ms, hits: answer.hits.length } }));
  loadHealth();
}

// An error answer: the page's own sentence for the service's `code` (the service's English
// words follow only where they say something more: which filter word, which file).
function complain(status, answer) {
  const code = answer.code || "";
  const detail = answer.error || "";
  if (code === "bad_filter") {
    showFilterError(t.badFilter, detail);
    say(t.refused, "problem");
  } else if (code === "invalid_request" && (answer.fields || []).includes("k")) {
    k.setAttribute("aria-invalid", "true");
    say(t.badK, "problem");
  } else if (code === "timeout") say(t.slow, "problem");
  else if (code === "busy") say(t.busy, "problem");
  else if (code === "unavailable") say(t.unavailable, "problem", detail);
  else if (code === "bad_query") say(t.badQuery, "problem", detail);
  else if (code === "too_large") say(t.tooLong, "problem");
  else say(t.failed(status), "problem", detail);
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
  $("examples").replaceChildren(...(answer.examples || []).map((example) => el("li", {},
    el("button", { type: "button", class: "example", text: example, ...withLang({}, example),
      onclick: () => { query.value = example; form.requestSubmit(); } }))));
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
      el("button", { type: "button", class: "chip",
        onclick: () => { where.value = ""; insert(`source == ${JSON.stringify(source)}`); } },
      isolated(source)))));
    $("sources").hidden = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const started = performance.now();
  const state = readForm();
  const url = urlFor(state);
  if (state.q && `${location.pathname}${location.search}` !== url) history.pushState(null, "", url);
  if (state.q) setTitle(state.q); // after pushState: the new history entry gets this title
  search(state, started);
});

window.addEventListener("popstate", () => {
  const params = new URLSearchParams(location.search);
  fillForm(params);
  if (query.value) {
    setTitle(query.value);
    search(readForm(), performance.now());
  } else blank(); // back to the page as first opened: nothing left from a later search
});

mode.addEventListener("change", () => { // a new mode applies at once, not on the next Enter
  if (query.value.trim()) form.requestSubmit();
});

$("more").addEventListener("click", () => {
  const now = Number(k.value) || Number(DEFAULTS.k);
  focusFrom = results.children.length;
  k.value = String(Math.min(MAX_K, now + Number(DEFAULTS.k)));
  form.requestSubmit();
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
if (query.value) {
  setTitle(query.value);
  search(readForm(), performance.now());
} else query.focus();
