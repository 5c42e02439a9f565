#!/usr/bin/python3
# Prints the CGI environment as JSON: what the module exported, as an application sees it.
import json
import os
import sys

sys.stdout.write("Content-Type: application/json\r\n\r\n")
sys.stdout.write(json.dumps(dict(os.environ), ensure_ascii=False))
