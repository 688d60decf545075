"""Redaction of shareable outputs: secrets always, sessions and hosts with share=True."""

from __future__ import annotations

import copy
import json
import re
from html import unescape

import pytest
from report_synth import LEAKS, SERVER, TOKEN, build_analysis, leaky_analysis, sid

from mcpsniff.config import parse_config
from mcpsniff.report.redact import REDACTED, Redactor


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Authorization", "Bearer abc.def.ghi-123", f"Bearer {REDACTED}"),
        ("authorization", "Basic dXNlcjpwYXNz", f"Basic {REDACTED}"),
        ("Proxy-Authorization", "Negotiate xyz", f"Negotiate {REDACTED}"),
        ("Authorization", "rawtoken", REDACTED),
        ("Cookie", "sid=abc123; theme=dark", f"sid={REDACTED}; theme={REDACTED}"),
        ("Set-Cookie", "sid=abc123; Path=/; HttpOnly", f"sid={REDACTED}; Path=/; HttpOnly"),
        ("X-Api-Key", "k-123456", REDACTED),
        ("x-goog-api-key", "k-123456", REDACTED),
        ("X-Auth-Token", "t-123456", REDACTED),
        ("Client-Secret", "s3cr3t", REDACTED),
        ("content-type", "application/json", "application/json"),
        ("mcp-session-id", "0123456789abcdef", "0123456789abcdef"),  # not a secret unless sharing
        ("referer", "http://h/cb?code=abc&state=ok", f"http://h/cb?code={REDACTED}&state=ok"),
    ],
)
def test_header_values(name: str, value: str, expected: str) -> None:
    assert Redactor().header_value(name, value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/sprint/mcp?token=abc123", f"/sprint/mcp?token={REDACTED}"),
        ("/mcp?a=1&access_token=xyz&b=2", f"/mcp?a=1&access_token={REDACTED}&b=2"),
        ("/mcp?API_KEY=xyz#frag", f"/mcp?API_KEY={REDACTED}#frag"),
        ("/x?sig=abc;key=def", f"/x?sig={REDACTED};key={REDACTED}"),
        ("/x?monkey=1&keyboard=2", "/x?monkey=1&keyboard=2"),
        ('{"auth": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"}', f'{{"auth": "Bearer {REDACTED}"}}'),
        ('{"access_token": "abc\\"def", "n": 1}', f'{{"access_token": "{REDACTED}", "n": 1}}'),
        ('{"password":"hunter2"}', f'{{"password":"{REDACTED}"}}'),
        ("the bearer of bad news", "the bearer of bad news"),
        ("plain text, nothing secret", "plain text, nothing secret"),
    ],
)
def test_text(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


def test_configured_headers_and_patterns() -> None:
    config = parse_config({"redact": {"headers": ["X-Tenant"], "patterns": [r"sk-[A-Za-z0-9]{8,}", r"acct-\d+"]}})
    r = Redactor(config)
    assert r.header_value("x-tenant", "acme") == REDACTED
    assert r.text('{"key": "sk-ABCDEFGH12", "account": "acct-42"}') == f'{{"key": "{REDACTED}", "account": "{REDACTED}"}}'


def _all_text(analysis) -> str:
    return json.dumps(analysis.to_dict(), default=str)


def test_apply_redacts_everywhere_and_leaves_the_original_alone() -> None:
    analysis = build_analysis()
    sprint = analysis.namespaces[2]
    sprint.exchanges[3].request_body = json.dumps({"params": {"auth": f"Bearer {TOKEN}"}})
    sprint.exchanges[4].target = "/sprint/mcp?token=" + TOKEN
    before = copy.deepcopy(analysis)
    out = Redactor().apply(analysis)
    assert _all_text(analysis) == _all_text(before)  # the caller's object is untouched
    assert TOKEN in _all_text(analysis) and TOKEN not in _all_text(out)
    assert out.namespaces[2].exchanges[4].target == f"/sprint/mcp?token={REDACTED}"
    assert dict(out.namespaces[2].exchanges[4].request_headers)["authorization"] == f"Bearer {REDACTED}"
    # without share, session ids, hosts and file names stay as captured
    assert sid("sprint", 1) in _all_text(out) and SERVER in _all_text(out)
    assert out.sources == analysis.sources


def test_share_pseudonyms_are_consistent() -> None:
    analysis = build_analysis()
    out = Redactor(share=True).apply(analysis)
    text = _all_text(out)
    for ns in analysis.namespaces:
        for gen in ns.generations:
            assert gen.session_id not in text
    assert "127.0.0.1" not in text
    assert "/home/alice" not in text and out.sources == ["capture.pcap"]
    # S1 is the first session seen (the first namespace's first session)
    assert out.namespaces[0].generations[0].session_id == "S1"
    seen: dict[str, str] = {}
    for ns_in, ns_out in zip(analysis.namespaces, out.namespaces):
        for ex_in, ex_out in zip(ns_in.exchanges, ns_out.exchanges):
            if ex_in.session_id:
                assert re.fullmatch(r"S\d+", ex_out.session_id)
                assert seen.setdefault(ex_in.session_id, ex_out.session_id) == ex_out.session_id
                assert dict(ex_out.request_headers)["mcp-session-id"] == ex_out.session_id
    assert len(set(seen.values())) == len(seen) == 7  # 3 namespaces x 2 sessions + sprint's one
    # addresses keep their ports, hosts become host1..
    conn = next(iter(out.connections.values()))
    assert re.fullmatch(r"host\d+:\d+", conn["server"]) and re.fullmatch(r"host\d+:\d+", conn["client"])
    assert dict(out.namespaces[0].exchanges[0].request_headers)["host"] == conn["server"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect 10.0.0.1:80 and 10.0.0.12:80", "connect host1:80 and host2:80"),
        ("version 110.0.0.1", "version 110.0.0.1"),
        ("[::1]:8080", "[host3]:8080"),
        ("https://mcp.internal.example/api?x=1", "https://host4/api?x=1"),
        ("mcp.internal.example.com stays", "mcp.internal.example.com stays"),
    ],
)
def test_share_hosts_are_matched_whole(text: str, expected: str) -> None:
    r = Redactor(share=True)
    for host in ("10.0.0.1:80", "10.0.0.12:80", "[::1]:8080", "https://mcp.internal.example/x"):
        r._host(host)
    r._compile()
    assert r.text(text) == expected


# ---- leak classes (issue 13, item 10): secrets in tool results, camelCase keys, form bodies, Private-Token ----

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # JSON text inside a JSON string (an MCP tool result), at one and two levels of embedding
        (json.dumps({"text": json.dumps({"access_token": "abc123", "token_type": "Bearer"})}),
         json.dumps({"text": json.dumps({"access_token": REDACTED, "token_type": "Bearer"})})),
        (json.dumps({"a": json.dumps({"b": json.dumps({"refresh_token": 'x"y\\z'})})}),
         json.dumps({"a": json.dumps({"b": json.dumps({"refresh_token": REDACTED})})})),
        (json.dumps({"text": json.dumps({"password": "p"}, indent=2)}), json.dumps({"text": json.dumps({"password": REDACTED}, indent=2)})),
        # key names: case and separators ignored
        ('{"accessToken": "a", "RefreshToken": "b", "client-Secret": "c", "API_KEY": "d", "x.auth.token": "e"}',
         f'{{"accessToken": "{REDACTED}", "RefreshToken": "{REDACTED}", "client-Secret": "{REDACTED}", "API_KEY": "{REDACTED}", "x.auth.token": "{REDACTED}"}}'),
        ('{"password": 123456}', f'{{"password": "{REDACTED}"}}'),
        ("{'access_token': 'py-repr'}", f"{{'access_token': '{REDACTED}'}}"),
        ('{"access_token": "cut off by max_bo', f'{{"access_token": "{REDACTED}'),
        # form bodies, also at the very start, and JSON inside a form field
        ("password=hunter2&username=bob", f"password={REDACTED}&username=bob"),
        ("grant_type=refresh_token&refreshToken=r1&client_secret=c1", f"grant_type=refresh_token&refreshToken={REDACTED}&client_secret={REDACTED}"),
        ("state=%7B%22accessToken%22%3A%22t1%22%7D&x=1", "state=%7B%22accessToken%22%3A%22%5BREDACTED%5D%22%7D&x=1"),
        # "Name: value" in text (a log line, a command line)
        ("curl -H 'Private-Token: glpat-123' http://x", f"curl -H 'Private-Token: {REDACTED}' http://x"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}"),
        # names that only look like secrets stay
        ('{"max_tokens": 100, "token_type": "bearer", "input_tokens": 5, "tokenizer": "cl100k"}', '{"max_tokens": 100, "token_type": "bearer", "input_tokens": 5, "tokenizer": "cl100k"}'),
        ("access-control-allow-credentials: true", "access-control-allow-credentials: true"),
        ("Session not found: abc", "Session not found: abc"),
    ],
)
def test_text_finds_secrets_by_name(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(("name", "secret"), [("Private-Token", True), ("private_token", True), ("X-Gitlab-Token", True), ("Job-Token", True), ("X-Hub-Signature-256", True),
                                              ("Client-Secret", True), ("x-ratelimit-remaining-tokens", False), ("access-control-allow-credentials", False),
                                              ("Sec-WebSocket-Key", False), ("mcp-session-id", False)])
def test_secret_header_names(name: str, secret: bool) -> None:
    assert (Redactor().header_value(name, "v4lue-123") == REDACTED) is secret


def _ci_bundle(analysis, tmp_path, argv):  # type: ignore[no-untyped-def]
    from mcpsniff.analysis.gate import GateRule, evaluate
    from mcpsniff.ci import CiOptions, CiResult, CommandResult, write_bundle
    from mcpsniff.config import Config

    rule = GateRule()
    opts = CiOptions(port=18202, command=argv, rule=rule, config=Config(), artifacts=tmp_path)
    result = CiResult(1, CommandResult(argv, 0), tmp_path / "capture.pcapng", analysis=analysis, gate=evaluate(analysis, rule))
    write_bundle(opts, result)
    return {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}


ARGV = {  # how each leak class looks on the command line of `mcpsniff ci -- ...`
    "json-in-json": lambda s: ["call", json.dumps({"text": json.dumps({"access_token": s[0]})})],
    "camel-case": lambda s: ["login", json.dumps({"accessToken": s[0], "clientSecret": s[2]})],
    "form-body": lambda s: ["curl", "-d", f"password={s[0]}&client_secret={s[1]}"],
    "private-token": lambda s: ["curl", "-H", f"Private-Token: {s[0]}"],
}


@pytest.mark.parametrize("output", ["report", "har", "ci bundle"])
@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_leak_class_is_redacted_in_every_shared_output(leak: str, output: str, tmp_path) -> None:
    from mcpsniff.report.har import write_har
    from mcpsniff.report.html import write_html

    analysis = leaky_analysis(leak)
    secrets = LEAKS[leak]
    assert all(s in _all_text(analysis) for s in secrets)  # planted where a capture holds them
    if output == "report":
        write_html(analysis, tmp_path / "r.html")
        files = {"r.html": (tmp_path / "r.html").read_text(encoding="utf-8")}
    elif output == "har":
        write_har(analysis, tmp_path / "x.har")
        files = {"x.har": (tmp_path / "x.har").read_text(encoding="utf-8")}
    else:
        files = _ci_bundle(analysis, tmp_path, ARGV[leak](secrets))
        assert {"report.html", "summary.json", "junit.xml"} <= set(files)
    for name, text in files.items():
        found = [s for s in secrets if s in text or s in unescape(text) or json.dumps(s)[1:-1] in text]
        assert not found, f"{name} leaks {found}"
        if name in ("r.html", "x.har", "report.html", "summary.json", "junit.xml"):
            assert REDACTED in text or REDACTED in unescape(text), f"{name}: nothing redacted, the planted secret is not in it"
