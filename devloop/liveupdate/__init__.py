"""Live update: put a freshly built binary into the running containers instead of rolling out a new image.

schema.py (the profile block), plan.py (live update or full build, and why), state.py (what was
synced where, kept for `status` and for noticing a lost update), sync.py (the steps).
"""
