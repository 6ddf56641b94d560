"""The document: a title and blocks (verdict, headings, paragraphs, notes, lists, tables, verbatim
text, folded details, charts), rendered both to self-contained HTML (charts embedded as base64
PNG data URIs) and to Markdown (charts referenced under report_files/)."""

import base64
import contextlib
import html
import re


class Doc:
    def __init__(self, title):
        self.title = title
        self.blocks = []
        self.charts = []  # (file name, png bytes)
        self._stack = []  # the block lists of open details elements

    def _add(self, block):
        (self._stack[-1] if self._stack else self.blocks).append(block)

    def verdict(self, text):
        """The page's opening sentences: the result, stated plainly."""
        self._add(("verdict", text))

    def h2(self, text):
        self._add(("h2", text))

    def h3(self, text):
        self._add(("h3", text))

    def p(self, text):
        self._add(("p", text))

    def note(self, text):
        self._add(("note", text))

    def bullets(self, items):
        self._add(("ul", list(items)))

    def table(self, headers, rows, right=None, small=False):
        """right: indices of right-aligned columns (default: all but the first); small: a
        smaller font, for tables of many columns."""
        if right is None:
            right = set(range(1, len(headers)))
        self._add(("table", list(headers), [list(r) for r in rows], set(right), small))

    def verbatim(self, text):
        """Text shown as it is (a file's content), in a monospaced block."""
        self._add(("pre", text))

    @contextlib.contextmanager
    def details(self, summary):
        """Blocks added inside `with doc.details(...)` are folded away under `summary`."""
        inner = []
        self._add(("details", summary, inner))
        self._stack.append(inner)
        try:
            yield
        finally:
            self._stack.pop()

    def chart(self, name, png, title, caption):
        self.charts.append((name, png))
        self._add(("img", name, png, title, caption))


def _md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_blocks(blocks, out):
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "h3":
            out += [f"### {b[1]}", ""]
        elif kind in ("p", "verdict"):
            out += [b[1], ""]
        elif kind == "note":
            out += [f"_{b[1]}_", ""]
        elif kind == "ul":
            out += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            headers, rows, right = b[1], b[2], b[3]
            out.append("| " + " | ".join(_md_escape(h) for h in headers) + " |")
            out.append("|" + "|".join("---:" if i in right else "---"
                                      for i in range(len(headers))) + "|")
            for r in rows:
                out.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
            out.append("")
        elif kind == "pre":
            longest = max((len(m) for m in re.findall(r"`+", b[1])), default=0)
            fence = "`" * max(3, longest + 1)
            out += [fence, b[1].rstrip("\n"), fence, ""]
        elif kind == "details":
            out += [f"<details><summary>{html.escape(b[1])}</summary>", ""]
            _md_blocks(b[2], out)
            out += ["</details>", ""]
        elif kind == "img":
            name, _, title, caption = b[1], b[2], b[3], b[4]
            out += [f"![{title}](report_files/{name})", ""]
            if caption:
                out += [f"_{caption}_", ""]


def render_markdown(doc):
    """report.md's text of `doc`, charts referenced as report_files/NAME."""
    out = [f"# {doc.title}", ""]
    _md_blocks(doc.blocks, out)
    return "\n".join(out).rstrip() + "\n"


# Tables never widen the page: text cells wrap (after a '/' first, anywhere if they must), wide
# tables use a smaller font, and each table sits in a container that scrolls sideways only as a
# last resort.
_STYLE = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 16px}
h1{font-size:1.6em;border-bottom:2px solid #444;padding-bottom:4px}
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #bbb}
h3{font-size:1.1em}
p.verdict{font-size:1.05em;background:#f3f6fa;border-left:4px solid #1f77b4;padding:8px 12px}
div.table-wrap{max-width:100%;overflow-x:auto;margin:8px 0 16px}
table{border-collapse:collapse;font-size:0.9em}
table.small{font-size:0.78em}
th,td{border:1px solid #ccc;padding:3px 8px;vertical-align:top}
td.w{overflow-wrap:anywhere}
table.small th,table.small td{padding:2px 5px}
th{background:#eee;text-align:left}
td.r{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;font-size:0.85em;
white-space:pre-wrap;overflow-wrap:anywhere}
details{margin:8px 0 16px}
summary{cursor:pointer;color:#1f4e79}
figure{margin:12px 0 24px}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444;margin-top:4px}
p.note{font-size:0.9em;color:#555;font-style:italic}
"""


# Records script errors and, once every image has loaded, how many decoded (naturalWidth > 0).
_SCRIPT = """
(function(){
  var errors = [];
  function mark(){
    var root = document.documentElement;
    root.setAttribute('data-script-errors', String(errors.length));
    if (errors.length) root.setAttribute('data-script-error-text', errors.join(' | '));
  }
  window.onerror = function(msg, src, line){
    errors.push(String(msg) + ' at ' + line); mark(); return false;
  };
  window.addEventListener('error', function(e){ if (e.target && e.target.tagName === 'IMG') {
    errors.push('image failed to load: ' + (e.target.alt || '')); mark(); } }, true);
  mark();
  window.addEventListener('load', function(){
    var imgs = document.getElementsByTagName('img'), ok = 0;
    for (var i = 0; i < imgs.length; i++) {
      if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
    }
    var root = document.documentElement;
    root.setAttribute('data-images-total', String(imgs.length));
    root.setAttribute('data-images-loaded', String(ok));
    root.setAttribute('data-report-ready', '1');
    mark();
  });
})();
"""


def _cell_html(text):
    """A table cell's text, escaped, with a line-break opportunity after each '/' (candidate
    names and paths wrap there rather than mid-word)."""
    return html.escape(str(text)).replace("/", "/<wbr>")


def _text_td(text):
    """A text cell; one holding a word over 24 characters (between spaces and '/') may also
    break inside words, so that it cannot widen the table past the page."""
    long_word = max((len(w) for w in re.split(r"[\s/]+", str(text))), default=0) > 24
    return ('<td class="w">' if long_word else "<td>") + f"{_cell_html(text)}</td>"


def _html_blocks(blocks, out):
    e = html.escape
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out.append(f"<h2>{e(b[1])}</h2>")
        elif kind == "h3":
            out.append(f"<h3>{e(b[1])}</h3>")
        elif kind == "verdict":
            out.append(f'<p class="verdict">{_inline_html(b[1])}</p>')
        elif kind == "p":
            out.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "note":
            out.append(f'<p class="note">{_inline_html(b[1])}</p>')
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            headers, rows, right, small = b[1], b[2], b[3], b[4]
            out.append('<div class="table-wrap"><table' + (' class="small"' if small else "")
                       + "><thead><tr>"
                       + "".join(f"<th>{_cell_html(h)}</th>" for h in headers)
                       + "</tr></thead><tbody>")
            for r in rows:
                cells = "".join(
                    (f'<td class="r">{e(str(c))}</td>' if i in right else _text_td(c))
                    for i, c in enumerate(r))
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table></div>")
        elif kind == "pre":
            out.append(f"<pre>{e(b[1])}</pre>")
        elif kind == "details":
            out.append(f"<details><summary>{e(b[1])}</summary>")
            _html_blocks(b[2], out)
            out.append("</details>")
        elif kind == "img":
            name, png, title, caption = b[1], b[2], b[3], b[4]
            width, height = png_size(png)
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure id="{e(name[:-4])}"><img src="data:image/png;base64,{data}" '
                       f'alt="{e(title)}" width="{width}" height="{height}">'
                       f"<figcaption>{e(title)}" + (f". {_inline_html(caption)}" if caption else "")
                       + "</figcaption></figure>")


def render_html(doc):
    """report.html's text of `doc`: one self-contained page, charts embedded as data URIs."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(doc.title)}</title>", f"<style>{_STYLE}</style>",
           f"<script>{_SCRIPT}</script>", "</head>", "<body>", f"<h1>{e(doc.title)}</h1>"]
    _html_blocks(doc.blocks, out)
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _inline_html(text):
    """Escapes text; `code` spans become <code>."""
    parts = str(text).split("`")
    return "".join(html.escape(p) if i % 2 == 0 else f"<code>{html.escape(p)}</code>"
                   for i, p in enumerate(parts))


def png_size(png):
    """(width, height) of PNG bytes from their IHDR chunk; (0, 0) when they are not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
