"""The manual pages render cleanly and list exactly the options --help lists."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DOC = os.path.join(harness.SOURCE, "doc")


def options_in(text):
    longs = set(re.findall(r"(?<![\w-])--([a-z][a-z-]+)", text))
    shorts = set(re.findall(r"(?<![\w-])-([a-zA-Z?])(?![\w-])", text))
    return longs, shorts


def roff_text(lines):
    """Roff source lines as plain words: macros, fonts and escapes dropped."""
    text = " ".join(re.sub(r"^\.[A-Z]{1,2}\b ?", "", l) for l in lines if l != ".PP")
    for a, b in (("\\-", "-"), ("\\fI", ""), ("\\fR", ""), ("\\fB", ""), ("\\fP", ""),
                 ('"', ""), ("\\(dq", '"'), ("\\(aq", "'")):
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text)


def man_entries(path):
    """OPTIONS of a page: {option name: text of its entry}."""
    with open(path) as f:
        section = f.read().split(".SH OPTIONS", 1)[1].split("\n.SH ", 1)[0]
    out = {}
    for item in section.split(".TP\n")[1:]:
        lines = item.splitlines()
        longs, shorts = options_in(roff_text(lines[:1]).replace(",", " "))
        body = roff_text(lines[1:])
        for name in longs | shorts:
            out[name] = body
    return out


def human(n):
    """67108864 -> 64M: the manual may write a size either way."""
    for suffix, size in (("G", 1 << 30), ("M", 1 << 20), ("k", 1 << 10)):
        if n % size == 0:
            return "%d%s" % (n // size, suffix)
    return str(n)


def man_options(path):
    with open(path) as f:
        src = f.read()
    section = src.split(".SH OPTIONS", 1)[1].split("\n.SH ", 1)[0]
    tags = []  # the .TP tag lines only: option names, not the prose
    lines = section.splitlines()
    for i, line in enumerate(lines):
        if line == ".TP" and i + 1 < len(lines):
            tags.append(lines[i + 1])
    text = "\n".join(tags).replace("\\-", "-").replace("\\fI", "").replace("\\fR", "").replace("\\fB", "")
    text = re.sub(r"^\.B[IR]* ", "", text, flags=re.M).replace('"', " ").replace(",", " ")
    return options_in(text)


class Docs(unittest.TestCase):
    def test_render_without_warnings(self):
        for page in ("smtpipe.8", "mockmta.8"):
            r = subprocess.run(["groff", "-t", "-man", "-ww", "-z", os.path.join(DOC, page)],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    def test_no_words_run_together(self):
        """An alternating-font macro (.IR, .BR, ...) joins its arguments
        with no space: prose written on such a line renders as
        "/dev/null);otherwisefromthekeyring". Two arguments that both look
        like words, side by side, are that mistake."""
        alternating = re.compile(r"^\.(IR|RI|BR|RB|BI|IB) (.*)$")
        for page in ("smtpipe.8", "mockmta.8"):
            with open(os.path.join(DOC, page)) as f:
                lines = f.read().splitlines()
            for n, line in enumerate(lines, 1):
                m = alternating.match(line)
                if not m:
                    continue
                args = re.findall(r'"[^"]*"|\S+', m.group(2))
                for prev, arg in zip(args, args[1:]):
                    self.assertFalse(re.search(r"[\w;,.)]$", prev.strip('"')) and
                                     re.match(r"[a-z]{2,}\b", arg.strip('"')),
                                     "%s:%d: %r and %r render as one word" % (page, n, prev, arg))
        # and what groff renders has no such run either
        r = subprocess.run(["groff", "-t", "-man", "-Tutf8", "-P-cbou", os.path.join(DOC, "smtpipe.8")],
                           capture_output=True, text=True)
        self.assertNotRegex(r.stdout, r"[a-z][);,][a-z]{3,}")

    def test_readme_mockmta_example(self):
        """The README's mockmta example runs as written, with mockmta on
        PATH, and prints the body as it was sent (mboxrd quoting undone)."""
        with open(os.path.join(harness.SOURCE, "README.md")) as f:
            readme = f.read()
        part = readme.split("## Using it as mockmta in a test suite", 1)[1]
        code = re.search(r"```python\n(.*?)```", part, re.S).group(1)
        bindir = os.path.dirname(harness.mockmta_binary())
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "hi 'From here on\\n'\n"), r.stderr)

    def test_help_and_manual_agree(self):
        help_text = subprocess.run([harness.binary(), "--help"], capture_output=True, text=True).stdout
        usage = [l for l in help_text.splitlines() if l.startswith("  ")]
        h_long, h_short = options_in("\n".join(usage))
        m_long, m_short = man_options(os.path.join(DOC, "smtpipe.8"))
        self.assertEqual(h_long, m_long)
        self.assertEqual(h_short, m_short)
        self.assertGreater(len(h_long), 25)

    def test_defaults_agree(self):
        # every default --help states is the one the manual states
        help_text = subprocess.run([harness.binary(), "--help"], capture_output=True, text=True).stdout
        entries = man_entries(os.path.join(DOC, "smtpipe.8"))
        checked = 0
        for line in help_text.splitlines():
            m = re.search(r"\(default:? ([^;)]*)", line)
            if not line.startswith("  ") or not m:
                continue
            default = m.group(1).strip()
            longs, shorts = options_in(line.split("  ")[1])
            for name in longs | shorts:
                self.assertIn(name, entries)
                want = {default}
                if default.isdigit():
                    want.add(human(int(default)))
                self.assertTrue(any(w in entries[name] for w in want),
                                "--%s: --help says default %s; the manual says: %s"
                                % (name, default, entries[name]))
                checked += 1
        self.assertGreater(checked, 15)

    def test_mandoc_lint(self):
        # mandoc is stricter than groff about structure (warnings and up;
        # its style notes on line length are not failures)
        r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"]
                           + [os.path.join(DOC, p) for p in ("smtpipe.8", "mockmta.8")],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_mockmta_page_has_mockmta_options(self):
        m_long, m_short = man_options(os.path.join(DOC, "mockmta.8"))
        self.assertEqual(m_short, set("acdfhklPptv?"))


if __name__ == "__main__":
    harness.main()
