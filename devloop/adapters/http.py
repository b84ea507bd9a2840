"""One plain HTTP GET from this machine to an address of the cluster (verify's `http` check: an Ingress at
the node's address, with the Host header its rule names). Certificates are not verified: a dev cluster's
ingress serves a self-signed one."""

from __future__ import annotations

import warnings

from devloop.base.errors import ClusterError

MAX_BODY = 64 * 1024


def get(url: str, *, host: str | None = None, timeout: float) -> tuple[int, str]:
    """(status, body text, cut at 64 KiB) of one GET without redirects; ClusterError when nothing answers."""
    import urllib3

    headers = {"Host": host} if host else {}
    pool = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)
    try:
        with warnings.catch_warnings():
            # urllib3 warns on every unverified HTTPS request; the check's documentation says it does not verify
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = pool.request(
                "GET",
                url,
                headers=headers,
                redirect=False,
                timeout=urllib3.Timeout(total=timeout),
                preload_content=True,
            )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterError(f"GET {url}: no answer: {exc}") from None
    finally:
        pool.clear()
    return response.status, (response.data or b"")[:MAX_BODY].decode("utf-8", "replace")
