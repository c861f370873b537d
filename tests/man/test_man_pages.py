"""The man pages against the code: lmtpfilter.conf(5) documents exactly the
keys the configuration parser knows, each with its default, and both pages
render with man(1) without a single warning.

The keys come from the parser's own tables in lmtpfilter/config.c
(main_keys[] for [lmtpfilter], policy_keys[] for [defaults] and
[domain NAME]), so a key added there without a man page entry, or an entry
for a key that is gone, fails here. The pages are the ones the build made
(version filled in): $LMTPFILTER_MAN_DIR, default build/lmtpfilter/man.
"""

import os
import re
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("LMTPFILTER_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
MAN_DIR = os.environ.get("LMTPFILTER_MAN_DIR", os.path.join(SOURCE_DIR, "build", "lmtpfilter", "man"))
CONFIG_C = os.path.join(SOURCE_DIR, "lmtpfilter", "config.c")
PAGES = ("lmtpfilter.8", "lmtpfilter.conf.5")
MAIN_SECTION = "[lmtpfilter] KEYS"
POLICY_SECTION = "POLICY KEYS"
# What lintian runs (its groff-message check), so the package and this agree.
RENDER_ENV = {"LC_ALL": "C.UTF-8", "MANROFFSEQ": "", "MANWIDTH": "80", "PATH": "/usr/bin:/bin"}
RENDER = ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"]


def parser_keys():
    """(keys of [lmtpfilter], keys of the policy groups) from config.c's tables."""
    with open(CONFIG_C) as f:
        code = f.read()
    main = re.search(r"static const struct main_key main_keys\[\] = \{(.*?)\n\};", code, re.S)
    policy = re.search(r"static const char \*const policy_keys\[\] = \{(.*?)\};", code, re.S)
    if main is None or policy is None:
        raise AssertionError("config.c: main_keys[] or policy_keys[] not found; update %s" % __file__)
    return (re.findall(r'\{\s*"([^"]+)"\s*,', main.group(1)),
            re.findall(r'"([^"]+)"', policy.group(1)))


def man_entries(path):
    """{section title: {key: entry text}} for every ".TP" / ".B key" entry."""
    sections = {}
    section = None
    key = None
    with open(path) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
            sections.setdefault(section, {})
            key = None
        elif line.startswith(".TP") and i + 1 < len(lines):
            tag = re.fullmatch(r"\.B (\S+)", lines[i + 1])
            key = tag.group(1) if tag else None
            if key is not None and section is not None:
                if key in sections[section]:
                    raise AssertionError("%s: %s documented twice in %s" % (path, key, section))
                sections[section][key] = ""
        elif key is not None and section is not None:
            sections[section][key] += line + "\n"
    return sections


def render(path):
    """(exit code, stdout length, stderr) of man --warnings on the page."""
    result = subprocess.run(RENDER + [path], env=RENDER_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60)
    return result.returncode, len(result.stdout), result.stderr.decode("utf-8", "replace")


class ConfigKeysTest(unittest.TestCase):

    def setUp(self):
        self.main_keys, self.policy_keys = parser_keys()
        self.entries = man_entries(os.path.join(MAN_DIR, "lmtpfilter.conf.5"))

    def test_tables_found(self):
        self.assertIn("listen", self.main_keys)
        self.assertIn("mode", self.policy_keys)

    def check_section(self, title, keys):
        documented = self.entries.get(title)
        self.assertIsNotNone(documented, "lmtpfilter.conf(5) has no section %r" % title)
        missing = [k for k in keys if k not in documented]
        extra = [k for k in documented if k not in keys]
        self.assertEqual(missing, [], "keys config.c knows that lmtpfilter.conf(5) lacks under %r" % title)
        self.assertEqual(extra, [], "keys lmtpfilter.conf(5) documents under %r that config.c does not know"
                         % title)
        for key, text in documented.items():
            self.assertIn("Default:", text, "lmtpfilter.conf(5): %s has no default" % key)

    def test_lmtpfilter_group_keys(self):
        self.check_section(MAIN_SECTION, self.main_keys)

    def test_policy_keys(self):
        self.check_section(POLICY_SECTION, self.policy_keys)


class SeeAlsoTest(unittest.TestCase):

    def test_readme_sections_named_exist(self):
        """The README sections the pages send the reader to are there."""
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            headings = {l[3:].strip() for l in f if l.startswith("## ")}
        for page in PAGES:
            with open(os.path.join(MAN_DIR, page)) as f:
                named = re.findall(r'^\.B "(Migrating[^"]*)"$', f.read(), re.M)
            self.assertNotEqual(named, [], "%s names no README section" % page)
            for title in named:
                self.assertIn(title.replace("\\-", "-"), headings, "%s: README.md section" % page)


class RenderTest(unittest.TestCase):

    def test_pages_render_without_warnings(self):
        for page in PAGES:
            path = os.path.join(MAN_DIR, page)
            code, size, errors = render(path)
            self.assertEqual((code, errors), (0, ""), "man --warnings -l %s" % path)
            self.assertGreater(size, 1000, "%s rendered to almost nothing" % page)
            with open(path) as f:
                self.assertNotIn("@VERSION@", f.read(), "the build fills in the version")

    def test_compressed_pages_built(self):
        for page in PAGES:
            self.assertTrue(os.path.exists(os.path.join(MAN_DIR, page + ".gz")), page + ".gz")

    def test_a_warning_is_seen(self):
        """The render check is not blind: a broken page warns."""
        with tempfile.NamedTemporaryFile("w", suffix=".8") as f:
            f.write(".TH BROKEN 8\n.SH NAME\nbroken \\- x\n.SH DESCRIPTION\n\\fBbold\n.ZZ\n\\*(XX\n")
            f.flush()
            code, _, errors = render(f.name)
        self.assertNotEqual(errors, "", "man --warnings printed nothing for a broken page")


if __name__ == "__main__":
    unittest.main()
