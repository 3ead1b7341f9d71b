"""Apertium's HTTP service (APY, the Debian package apertium-apy) on one
address only: APY itself listens on every interface, so its bind is
narrowed here. Serves the language pairs installed under the modes
directory (Debian's: /usr/share/apertium/modes) until SIGTERM.

APY tells which language a text is in (/identifyLang) by how much of it
each language's morphological analyser recognises. Debian's pair
packages ship those analysers (the first stage of every pair) but no
mode that names them, so this writes one `<lang>-morph.mode` per source
language into a modes directory of its own (OWN_MODES, by default
`modes` in the working directory), beside links to the pairs.

    /usr/bin/python3 apertium_server.py HOST PORT [MODES_DIR [OWN_MODES]]
"""

import os
import re
import shlex
import sys

host, port = sys.argv[1], sys.argv[2]
installed = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/apertium/modes"
own = sys.argv[4] if len(sys.argv) > 4 else "modes"


def modes_with_analysers(installed, into):
    os.makedirs(into, exist_ok=True)
    analysers = {}
    for name in sorted(os.listdir(installed)):
        pair = re.fullmatch(r"([a-z]{2,3})-([a-z]{2,3}(?:_\w+)?)\.mode", name)
        if not name.endswith(".mode"):
            continue
        link = os.path.join(into, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(installed, name), link)
        if not pair:
            continue
        with open(os.path.join(installed, name)) as mode:
            first = shlex.split(mode.read().split("|")[0])
        # The pair's first stage: lt-proc [flags] <analyser>.automorf.bin
        if first and first[0] == "lt-proc" and first[-1].endswith(".automorf.bin"):
            analysers.setdefault(pair.group(1), first[-1])
    for lang, automorf in analysers.items():
        path = os.path.join(into, f"{lang}-morph.mode")
        if not os.path.exists(os.path.join(installed, f"{lang}-morph.mode")):
            with open(path, "w") as mode:
                mode.write(f"lt-proc -w {shlex.quote(automorf)}\n")
    return into


modes = modes_with_analysers(installed, os.path.abspath(own))
# APY reads its arguments from sys.argv.
sys.argv = ["apertium-apy", "--port", port, modes]

try:
    import tornado.tcpserver
    from apertium_apy import apy
except ImportError as e:
    sys.exit(f"Apertium's service is not installed ({e}): apt install apertium-apy (scripts/setup does)")

bind = tornado.tcpserver.TCPServer.bind


def bind_here(self, port, address=None, *rest, **named):
    return bind(self, port, host, *rest, **named)


tornado.tcpserver.TCPServer.bind = bind_here
apy.main()
