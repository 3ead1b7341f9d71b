"""Apertium's HTTP service (APY, the Debian package apertium-apy) on one
address only: APY itself listens on every interface, so its bind is
narrowed here. Serves the language pairs installed under the modes
directory (Debian's: /usr/share/apertium/modes) until SIGTERM.

    /usr/bin/python3 apertium_server.py HOST PORT [MODES_DIR]
"""

import sys

host, port = sys.argv[1], sys.argv[2]
modes = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/apertium/modes"
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
