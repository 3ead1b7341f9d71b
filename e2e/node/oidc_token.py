"""Gets an ID token from the test identity provider for its client, as the
workspace would (code flow with PKCE), and prints it.

    python3 oidc_token.py ISSUER LOGIN CLIENT_ID CLIENT_SECRET REDIRECT_URI NONCE

For tests that check tokens directly: the redirect is not followed, the
code is exchanged here.
"""
import base64
import hashlib
import secrets
import sys
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from idp_browser import follow_to

issuer, login, client_id, client_secret, redirect, nonce = sys.argv[1:7]
config = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
query = urlencode({
    "response_type": "code", "client_id": client_id, "redirect_uri": redirect,
    "scope": "openid email profile entra", "state": "s", "nonce": nonce,
    "code_challenge": challenge, "code_challenge_method": "S256",
})
session = requests.Session()
url = follow_to(session, f"{config['authorization_endpoint']}?{query}", login, redirect)
code = parse_qs(urlparse(url).query)["code"][0]
token = requests.post(
    config["token_endpoint"],
    data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "code_verifier": verifier},
    auth=(client_id, client_secret),
    timeout=10,
)
token.raise_for_status()
print(token.json()["id_token"])
