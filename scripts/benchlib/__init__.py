"""devloop's benchmarks, run through scripts/bench (the one entry point).

common.py  bootstrap (the checkout's venv, the test cluster's environment), stats, timing, polling
tree.py    generated Go-shaped workspaces, cached between runs
cli.py     `devloop --help` start-up; no-change build vs `git status`
watch.py   watcher scale (set-up, idle CPU, RSS, ignored writes) and write -> build latency
e2e.py     edit -> new pod Ready through `devloop watch` on the test cluster
core.py    `devloop apply` over finalizer-held objects vs the hand-run sequence; `devloop clean`
"""
