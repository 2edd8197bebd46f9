"""The format readers, one module per format (as `stores/` is for backends): each turns a file's
bytes into `Document`s. `semsearch.corpus` finds the files and picks the reader.

- `text`: text and Markdown files, decoded;
- `html`: web pages' main text (trafilatura);
- `pdf`: PDF text layers, page by page (pypdf);
- `docx`: Word files' body, headers, footers, notes and comments (python-docx);
- `records`: one document per record of JSONL, CSV and JSON-array files.
"""
