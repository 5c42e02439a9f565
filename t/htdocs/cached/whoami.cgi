#!/usr/bin/python3
# A page a shared cache would keep for a minute (max-age, Last-Modified), were it not
# for the module: it names the user it was made for.
import json
import os
import sys

sys.stdout.write("Content-Type: application/json\r\n"
                 "Cache-Control: max-age=60\r\n"
                 "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n")
sys.stdout.write(json.dumps({"user": os.environ.get("REMOTE_USER")}))
