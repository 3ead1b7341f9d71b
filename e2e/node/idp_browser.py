"""Walks through the test identity provider as a browser would: follows
redirects and fills its development login form, keeping cookies in one
jar. Shared by oidc_login.py and oidc_token.py."""
import re
from urllib.parse import urljoin


def follow_to(session, url, login, prefix):
    """Follows `url` until a redirect leads to a URL starting with
    `prefix`, which is returned unvisited; the provider's login form is
    filled with `login` on the way."""
    method, data = "GET", None
    for _ in range(20):
        if url.startswith(prefix):
            return url
        response = session.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.status_code in (301, 302, 303, 307, 308):
            url, method, data = urljoin(url, response.headers["location"]), "GET", None
            continue
        form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        if response.status_code == 200 and form:
            url, method = urljoin(url, form.group(1)), "POST"
            data = {"login": login, "password": "any", "prompt": "login"}
            continue
        raise RuntimeError(f"{response.status_code} at {url}: {response.text[:500]}")
    raise RuntimeError("too many redirects")
