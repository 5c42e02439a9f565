"""README documents every directive the module knows, and only those."""
import os
import re

import harness


def read(*parts):
    with open(os.path.join(harness.ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def test_readme_and_directive_table_agree():
    code = set(re.findall(r'AP_INIT_\w+\("(MoneiConnect\w+)"', read("src", "mod_mc_config.c")))
    readme = read("README.md")
    documented = set(re.findall(r"^### (MoneiConnect\w+)$", readme, re.M))
    assert code, "no directives found in the code"
    assert code == documented, (sorted(code - documented), sorted(documented - code))
    for name in code:
        section = readme.split("### " + name + "\n", 1)[1].split("\n### ", 1)[0]
        assert "default" in section or "required" in section or "none" in section, name
        assert "```apache" in section, name + " has no example"
