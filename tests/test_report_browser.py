#!/usr/bin/python3
"""index.html of `neuromask eval` in a real headless browser (Debian's chromium).

A tiny eval run on the bundled Fashion-MNIST model with one method of each
kind of map (a mask, a non-negative map, a signed map) writes the report;
chromium loads it with #selftest (the page then sorts its gallery by
insertion AUC through a scripted click and says in #selftest whether the
rows came out in order) and dumps the DOM. The test fails on any console
message (a JavaScript error), on what the page itself caught (.js-error: a
script error, a picture that does not load), and on any missing part: the run
line, the summary table with a row per method, both SVG charts with a curve
per method, the colour legend with a bar per kind, the gallery with every
picture. A broken copy of the page (a script error and a missing picture)
must be caught by the same checks, so the checks can fail. chromium is
started here and stopped by its process group id; if it cannot start, the
test fails.
"""
import html.parser
import os
import shutil
import signal
import subprocess
import sys
import tempfile

NM_BIN = os.environ["NM_BIN"]
SRC = os.environ["NM_SOURCE_DIR"]
CHROMIUM = "/usr/bin/chromium"
METHODS = ["neuromask", "gradcam", "integrated-gradients"]   # a mask, a non-negative map, a signed map
IMAGES = ["0_Ankle_boot.png", "13_Dress.png"]


class Dom(html.parser.HTMLParser):
    """The ids, tags and attributes of a dumped DOM, the text of #selftest and of each .js-error."""

    def __init__(self):
        super().__init__()
        self.ids, self.elements, self.selftest, self.errors, self._in = set(), [], None, [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        self._in = "selftest" if a.get("id") == "selftest" else "error" if a.get("class") == "js-error" else None
        if self._in == "error":
            self.errors.append("")

    def handle_data(self, data):
        if self._in == "selftest":
            self.selftest = (self.selftest or "") + data
        elif self._in == "error":
            self.errors[-1] += data

    def handle_endtag(self, tag):
        self._in = None

    def after(self, tag, id_, child):
        """The attributes of the `child` elements that follow the element <tag id=id_> until the next `tag`."""
        out, inside = [], False
        for t, a in self.elements:
            if t == tag:
                inside = a.get("id") == id_
            elif inside and t == child:
                out.append(a)
        return out

    def count(self, tag, **want):
        return sum(1 for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in want.items()))


def run_chromium(page, work):
    """(dumped DOM, console lines) of page#selftest; raises when chromium cannot start or hangs."""
    profile = tempfile.mkdtemp(dir=work)
    out, err = os.path.join(work, "dom.html"), os.path.join(work, "chromium.log")
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
                              "--virtual-time-budget=5000", "--dump-dom", "file://" + page + "#selftest"],
                             stdout=o, stderr=e, start_new_session=True)
        try:
            rc = p.wait(timeout=180)
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # chromium and its helpers, by the group it leads
            except ProcessLookupError:
                pass
            p.wait()
    dom, log = open(out).read(), open(err, errors="replace").read().splitlines()
    if rc != 0 or "<html" not in dom:
        raise RuntimeError("chromium did not load %s (exit %d): %s" % (page, rc, " | ".join(log[-5:])))
    return dom, [line for line in log if ":CONSOLE" in line]


def problems(dom_text, console, n_images):
    """What is wrong with the page, as a list of sentences (empty: nothing)."""
    why = ["console: " + line for line in console]
    d = Dom()
    d.feed(dom_text)
    for i in ("run", "summary", "notes", "curves", "deletion-curves", "insertion-curves", "legend", "t", "selftest"):
        if i not in d.ids:
            why.append("no element #%s" % i)
    why += ["the page caught: " + e for e in d.errors]
    if not (d.selftest or "").startswith("ok"):
        why.append("the scripted sort by insertion did not order the rows: %r" % d.selftest)
    for m in METHODS:
        if not d.count("tr", **{"data-method": m}):
            why.append("no summary row for %s" % m)
        if d.count("polyline", **{"data-method": m}) != 2:
            why.append("not 2 curves (deletion, insertion) for %s" % m)
    for kind in ("mask", "nonnegative", "signed"):
        stops = d.after("lineargradient", "bar-" + kind, "stop")
        if len(stops) != 17:
            why.append("the legend's %s bar has %d colour stops, expected 17" % (kind, len(stops)))
    # the signed bar is the diverging map: blue at -a, white at 0, red at +a (as the panels draw it)
    signed = [tuple(int(v) for v in a.get("stop-color", "rgb(0,0,0)")[4:-1].split(","))
              for a in d.after("lineargradient", "bar-signed", "stop")]
    if len(signed) == 17 and not (signed[8] == (255, 255, 255) and signed[0][2] > 2 * signed[0][0] and
                                  signed[16][0] > 2 * signed[16][2]):
        why.append("the legend's signed bar is not blue - white - red: %s %s %s" % (signed[0], signed[8], signed[16]))
    if not d.after("lineargradient", "bar-mask", "stop")[:1] == [{"offset": "0.0000", "stop-color": "rgb(0,0,4)"}]:
        why.append("the legend's mask bar does not start with inferno's black")
    if d.count("img") != n_images * (1 + len(METHODS)):
        why.append("%d pictures, expected %d" % (d.count("img"), n_images * (1 + len(METHODS))))
    return why


def main():
    if not os.access(CHROMIUM, os.X_OK):
        print("FAIL: %s is not installed (tools/install_deps.sh --test installs chromium)" % CHROMIUM)
        return 1
    work = tempfile.mkdtemp(prefix="nm_report_browser.")
    try:
        out = os.path.join(work, "eval")
        cmd = [NM_BIN, "eval", "--model", os.path.join(SRC, "models/fashion_cnn.onnx"), "--methods", ",".join(METHODS),
               "--labels", os.path.join(SRC, "data/fashion/labels.csv"), "--steps", "16", "--nm-steps", "10",
               "--ig-steps", "4", "--out", out, "--quiet"] + [os.path.join(SRC, "data/fashion", f) for f in IMAGES]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL: eval exited %d: %s" % (r.returncode, r.stderr.strip()))
            return 1
        page = os.path.join(out, "index.html")
        fails = 0
        dom, console = run_chromium(page, work)
        why = problems(dom, console, len(IMAGES))
        for w in why:
            print("FAIL: " + w)
        fails += len(why)
        if not why:
            print("ok: index.html loads in chromium with no console message, every part present, sorted by a click")

        # The same checks on a broken copy: a script error and a picture that is not there.
        broken = os.path.join(out, "broken.html")
        text = open(page).read().replace("</body>", "<script>noSuchFunction();</script></body>")
        first_overlay = text.index('src="img/', text.index("<tbody>"))
        text = text[:first_overlay] + 'src="img/missing.png' + text[text.index('"', first_overlay + 5):]
        open(broken, "w").write(text)
        dom, console = run_chromium(broken, work)
        caught = problems(dom, console, len(IMAGES))
        for what in ("noSuchFunction", "missing.png"):
            if not any(what in w for w in caught):
                print("FAIL: the checks miss %s in a broken page (found: %s)" % (what, caught))
                fails += 1
        if not fails:
            print("ok: a broken copy of the page is caught (%d problems)" % len(caught))
        return 1 if fails else 0
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
