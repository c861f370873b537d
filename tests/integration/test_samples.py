"""The shipped samples are valid: the configuration passes -t, the Sieve
scripts compile with Dovecot's sievec."""
import os
import shutil
import subprocess
import tempfile
import unittest

import harness

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "samples")


class SamplesTest(unittest.TestCase):
    def test_sample_config_is_valid(self):
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", os.path.join(SAMPLES, "lmtpfilter.conf"), "-t"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("configuration ok", r.stdout)

    def test_bad_config_names_file_group_and_key(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write("[lmtpfilter]\ndns_timeout = soon\n[defaults]\nmode = maybe\n")
            r = subprocess.run([harness.lmtpfilter_binary(), "-c", path, "-t"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(path + ": [lmtpfilter] dns_timeout:", r.stdout)
            self.assertIn(path + ": [defaults] mode:", r.stdout)

    def test_sieve_scripts_compile(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ("quarantine.sieve", "optout-user.sieve"):
                src = os.path.join(SAMPLES, "sieve", name)
                dst = os.path.join(d, name)
                shutil.copyfile(src, dst)
                r = subprocess.run(["sievec", dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                self.assertEqual(r.returncode, 0, name + ": " + r.stdout)

    def test_version(self):
        r = subprocess.run([harness.lmtpfilter_binary(), "--version"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^lmtpfilter \d+\.\d+")
        self.assertIn("libspf2", r.stdout)


if __name__ == "__main__":
    unittest.main()
