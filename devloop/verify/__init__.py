"""Verify after deploy: the profile's `verify` checks, run after every rollout (`up`, each `watch` cycle and
live update), with their results in the step lines, the `--json` events and `devloop status`.

Skaffold's `verify` is the anchor. A check is one of:

- `call`: apply an optional fixture (a Kubeless Function, say), wait until the pods behind its Service are
  ready, then GET through the API server's service proxy (`services/<name>:<port>/proxy/<path>`, what
  `kubeless function call` does) until the answer matches `expect` or the check's timeout runs out;
- `http`: GET an address of the cluster from this machine (`{node_ip}`: the node's InternalIP) with an optional
  Host header, until the answer matches;
- `job`: (re)create a Job and wait until it succeeds.

Nothing sleeps a fixed time: every wait polls with a deadline that says what it waited for. A failing check
shows its pods' log tail; `up` then ends with VerifyFailed (exit 1), `watch` reports it and goes on.

This package sits between the loop (which calls it) and the session: it must not import devloop.loop.
"""

from __future__ import annotations

from devloop.verify.run import CheckResult, VerifyFailed, check_files, run_checks

__all__ = ["CheckResult", "VerifyFailed", "check_files", "run_checks"]
