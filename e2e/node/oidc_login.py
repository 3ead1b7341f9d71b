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
import re
import sys
from urllib.parse import urljoin

import requests

start, login, callback = sys.argv[1], sys.argv[2], sys.argv[3]
stop = "--stop" in sys.argv
session = requests.Session()
url, method, data = start, "GET", None
for _ in range(20):
    if url.startswith(callback) and stop:
        print(json.dumps({"callback": url, "cookies": session.cookies.get_dict()}))
        sys.exit(0)
    response = session.request(method, url, data=data, allow_redirects=False, timeout=10)
    if url.startswith(callback):
        print(json.dumps({
            "status": response.status_code,
            "location": response.headers.get("location"),
            "setCookie": response.headers.get("set-cookie"),
            "cookies": session.cookies.get_dict(),
        }))
        sys.exit(0)
    if response.status_code in (301, 302, 303, 307, 308):
        url, method, data = urljoin(url, response.headers["location"]), "GET", None
        continue
    form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
    if response.status_code == 200 and form:
        url, method = urljoin(url, form.group(1)), "POST"
        data = {"login": login, "password": "any", "prompt": "login"}
        continue
    print(json.dumps({"error": f"{response.status_code} at {url}", "body": response.text[:500]}))
    sys.exit(1)
print(json.dumps({"error": "too many redirects"}))
sys.exit(1)
