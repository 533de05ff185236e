"""Drives Switchboard's admin API with the Python client generated from the
committed spec (openapi/switchboard-admin.json) by openapi-python-client:
add a server (disabled), enable it, read it back one by one and in the list,
and see a refused request answered with a problem document.

Only the generated package is used for HTTP: if the spec and the server
disagree, this fails.

Usage (after `bash ops/clients/python/generate.sh`):

    SWITCHBOARD_ADMIN_TOKEN=sbt_... \\
      target/python-client/venv/bin/python ops/clients/python/admin_e2e.py \\
      http://127.0.0.1:8080/api/v1 http://bbb.example/bigbluebutton BBB_SECRET

Exits 0 when every check holds, 1 (with the failed check on stderr) when one
does not, 2 on bad usage or a missing client.
"""

from __future__ import annotations

import os
import sys
import uuid

try:
    import httpx
    from switchboard_admin_client import AuthenticatedClient, errors
    from switchboard_admin_client.api.servers import (
        add_server,
        enable_server,
        get_server,
        list_servers,
    )
    from switchboard_admin_client.models import NewServer, Problem, ServerView
    from switchboard_admin_client.types import UNSET, Response
except ImportError as err:
    print(
        f"admin_e2e: the generated client is not importable ({err}): "
        "run `bash ops/clients/python/generate.sh` and use "
        "target/python-client/venv/bin/python",
        file=sys.stderr,
    )
    sys.exit(2)


class CheckFailed(Exception):
    """A check that did not hold."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def describe(response: Response) -> str:
    body = response.content.decode("utf-8", "replace")
    return f"HTTP {int(response.status_code)} {response.headers.get('content-type')}: {body}"


def expect_server(response: Response, status: int, what: str) -> ServerView:
    check(
        int(response.status_code) == status,
        f"{what}: expected HTTP {status}, got {describe(response)}",
    )
    check(
        isinstance(response.parsed, ServerView),
        f"{what}: the answer did not parse as a ServerView: {describe(response)}",
    )
    return response.parsed


def expect_problem(response: Response, status: int, what: str) -> Problem:
    check(
        int(response.status_code) == status,
        f"{what}: expected HTTP {status}, got {describe(response)}",
    )
    content_type = response.headers.get("content-type", "")
    check(
        content_type.startswith("application/problem+json"),
        f"{what}: expected an application/problem+json answer, got {describe(response)}",
    )
    problem = response.parsed
    check(
        isinstance(problem, Problem),
        f"{what}: the answer did not parse as a Problem: {describe(response)}",
    )
    check(problem.status == status, f"{what}: problem status {problem.status} != {status}")
    check(
        isinstance(problem.detail, str) and problem.detail.strip() != "",
        f"{what}: the problem has no detail: {describe(response)}",
    )
    return problem


def expect_no_secret(response: Response, server: ServerView, secret: str, what: str) -> None:
    check(
        "secret" not in server.additional_properties,
        f"{what}: the answer has a `secret` field: {describe(response)}",
    )
    check(
        secret.encode() not in response.content,
        f"{what}: the answer contains the server's secret",
    )


def run(base_url: str, token: str, bbb_url: str, bbb_secret: str) -> None:
    normalised = bbb_url if bbb_url.endswith("/") else bbb_url + "/"
    client = AuthenticatedClient(
        base_url=base_url,
        token=token,
        timeout=15.0,
        raise_on_unexpected_status=True,
    )
    with client as client:
        # Add: starts disabled, URL normalised, secret never shown.
        response = add_server.sync_detailed(
            client=client,
            body=NewServer(url=bbb_url, secret=bbb_secret, enabled=False),
        )
        added = expect_server(response, 201, "add_server")
        expect_no_secret(response, added, bbb_secret, "add_server")
        check(added.state == "disabled", f"add_server: state {added.state!r}, expected 'disabled'")
        check(added.url == normalised, f"add_server: url {added.url!r}, expected {normalised!r}")
        server_id = added.id
        print(f"added server {server_id} ({added.url}), state {added.state}")

        # Enable.
        response = enable_server.sync_detailed(server_id, client=client)
        enabled = expect_server(response, 200, "enable_server")
        check(enabled.id == server_id, f"enable_server: answered for {enabled.id}")
        check(enabled.state == "enabled", f"enable_server: state {enabled.state!r}, expected 'enabled'")
        print(f"enabled server {server_id}")

        # Read back, one and all.
        response = get_server.sync_detailed(server_id, client=client)
        server = expect_server(response, 200, "get_server")
        expect_no_secret(response, server, bbb_secret, "get_server")
        check(server.id == server_id, f"get_server: answered for {server.id}")
        check(server.state == "enabled", f"get_server: state {server.state!r}, expected 'enabled'")
        check(server.url == normalised, f"get_server: url {server.url!r}, expected {normalised!r}")
        check(server.url.endswith("/"), f"get_server: url {server.url!r} does not end with /")
        check(server.load_multiplier == 1.0, f"get_server: load_multiplier {server.load_multiplier}")
        check(server.tag in (None, UNSET), f"get_server: tag {server.tag!r}, expected none")
        print(f"read back server {server_id}: state {server.state}, url {server.url}")

        response = list_servers.sync_detailed(client=client)
        check(
            int(response.status_code) == 200 and isinstance(response.parsed, list),
            f"list_servers: expected HTTP 200 with a list, got {describe(response)}",
        )
        check(
            all(isinstance(item, ServerView) for item in response.parsed),
            f"list_servers: not every item parsed as a ServerView: {describe(response)}",
        )
        listed = [item for item in response.parsed if item.id == server_id]
        check(len(listed) == 1, f"list_servers: server {server_id} listed {len(listed)} times")
        check(listed[0].state == "enabled", f"list_servers: state {listed[0].state!r}")
        check(listed[0].url == normalised, f"list_servers: url {listed[0].url!r}")
        for item in response.parsed:
            expect_no_secret(response, item, bbb_secret, "list_servers")
        print(f"listed {len(response.parsed)} server(s), {server_id} enabled")

        # Refusals are problem documents the client parses.
        unknown = str(uuid.uuid4())
        response = get_server.sync_detailed(unknown, client=client)
        problem = expect_problem(response, 404, "get_server of an unknown id")
        check(unknown in problem.detail, f"get_server of an unknown id: detail {problem.detail!r} does not name it")
        print(f"unknown server: {int(response.status_code)} {problem.title}: {problem.detail}")

        other = normalised + "other/"
        response = add_server.sync_detailed(
            client=client,
            body=NewServer(url=other, secret=bbb_secret, load_multiplier=-1.0),
        )
        problem = expect_problem(response, 400, "add_server with load_multiplier -1")
        check("-1" in problem.detail, f"add_server with load_multiplier -1: detail {problem.detail!r} does not name it")
        print(f"negative load multiplier: {int(response.status_code)} {problem.title}: {problem.detail}")

        response = list_servers.sync_detailed(client=client)
        check(
            int(response.status_code) == 200 and not any(item.url == other for item in response.parsed),
            "add_server with load_multiplier -1 added a server anyway",
        )


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(
            "usage: SWITCHBOARD_ADMIN_TOKEN=TOKEN admin_e2e.py ADMIN_API_URL BBB_URL BBB_SECRET",
            file=sys.stderr,
        )
        return 2
    token = os.environ.get("SWITCHBOARD_ADMIN_TOKEN", "")
    if not token:
        print("admin_e2e: set SWITCHBOARD_ADMIN_TOKEN to an admin token", file=sys.stderr)
        return 2
    _, base_url, bbb_url, bbb_secret = argv
    try:
        run(base_url.rstrip("/"), token, bbb_url, bbb_secret)
    except CheckFailed as failure:
        print(f"admin_e2e: FAILED: {failure}", file=sys.stderr)
        return 1
    except errors.UnexpectedStatus as err:
        body = err.content.decode("utf-8", "replace")
        print(f"admin_e2e: FAILED: HTTP {err.status_code} is not in the spec: {body}", file=sys.stderr)
        return 1
    except httpx.HTTPError as err:
        print(f"admin_e2e: FAILED: cannot talk to {base_url}: {err!r}", file=sys.stderr)
        return 1
    print("admin_e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
