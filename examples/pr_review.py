"""Specialist agents review a pull request in parallel; a summary agent sums them up.

The input is what the GitHub CLI prints (``gh pr view 42 --json
title,body,files,additions,deletions`` and ``gh pr diff 42``); here, a small rate-limit
change. Offline: a fake OpenAI-compatible server plays every reviewer's model. The same
review runs from a shell with ``reactor review --pr-json pr.json --diff pr.diff``.

Run it with ``.venv/bin/python examples/pr_review.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from actors.agents import ensure_reviewers, pull_request, review_pull_request
from actors.llm import HostConfig, ModelHost
from actors.testing import FakeServer
from reactor import Engine

PR_JSON = {  # gh pr view 42 --json title,body,files,additions,deletions
    "title": "Add a login rate limit",
    "body": "Limits login attempts per IP to 5 a minute.",
    "additions": 9,
    "deletions": 1,
    "files": [{"path": "app/auth.py", "additions": 9, "deletions": 1}],
}
PR_DIFF = """diff --git a/app/auth.py b/app/auth.py
--- a/app/auth.py
+++ b/app/auth.py
@@ -1,3 +1,11 @@
+ATTEMPTS: dict[str, list[float]] = {}
+
+def allowed(ip: str) -> bool:
+    recent = [t for t in ATTEMPTS.get(ip, []) if time.time() - t < 60]
+    ATTEMPTS[ip] = recent + [time.time()]
+    return len(recent) < 5
+
 def login(user, password, ip):
-    return check(user, password)
+    return allowed(ip) and check(user, password)
"""

with tempfile.TemporaryDirectory() as tmp, FakeServer("openai", models=["llama3.2"]) as server:
    db = Path(os.environ.get("REACTOR_DB") or Path(tmp) / "review.db")
    with System(name="review-example") as system:
        system.spawn(ModelHost, name="local", args=(HostConfig(url=server.url, protocol="openai"),))
        with Engine(system, db_path=db, hosts={"llama3.2": "local"}) as engine:
            agents = engine.start_agents()
            ensure_reviewers(agents, model="llama3.2")  # from the built-in templates
            result = review_pull_request(agents, pull_request(PR_JSON, PR_DIFF))
            for review in result.reviews:
                print(f"{review.reviewer} ({review.role}, {review.chunks} part):")
                print("   ", review.content[:90], "...")
            print("summary by", result.summarizer + ":", result.summary[:90], "...")
