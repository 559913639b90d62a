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

    def test_help_and_manual_agree(self):
        help_text = subprocess.run([harness.binary(), "--help"], capture_output=True, text=True).stdout
        usage = [l for l in help_text.splitlines() if l.startswith("  ")]
        h_long, h_short = options_in("\n".join(usage))
        m_long, m_short = man_options(os.path.join(DOC, "smtpipe.8"))
        self.assertEqual(h_long, m_long)
        self.assertEqual(h_short, m_short)
        self.assertGreater(len(h_long), 25)

    def test_mockmta_page_has_mockmta_options(self):
        m_long, m_short = man_options(os.path.join(DOC, "mockmta.8"))
        self.assertEqual(m_short, set("acdfklPptv?"))


if __name__ == "__main__":
    harness.main()
