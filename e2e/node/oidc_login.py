"""Signs in at the test identity provider as a browser would, from a URL
that starts a sign-in, and prints what came back as JSON.

    python3 oidc_login.py START_URL LOGIN CALLBACK_PREFIX [--stop]

START_URL is the workspace's /api/v1/auth/oidc/start (or any URL that
leads to the provider); the provider's development login form is filled
with LOGIN. Redirects are followed until one leads to CALLBACK_PREFIX:
with --stop that URL is printed unvisited; otherwise it is visited and its
status, Location and cookies are printed. Cookies are kept as a browser
keeps them (one jar; the workspace's flow cookie among them).
"""
import json
import sys

import requests

from idp_browser import follow_to

start, login, callback = sys.argv[1], sys.argv[2], sys.argv[3]
session = requests.Session()
try:
    url = follow_to(session, start, login, callback)
except RuntimeError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(1)
if "--stop" in sys.argv:
    print(json.dumps({"callback": url, "cookies": session.cookies.get_dict()}))
    sys.exit(0)
response = session.get(url, allow_redirects=False, timeout=10)
print(json.dumps({
    "status": response.status_code,
    "location": response.headers.get("location"),
    "setCookie": response.headers.get("set-cookie"),
    "cookies": session.cookies.get_dict(),
}))
