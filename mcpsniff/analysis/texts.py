"""One-paragraph explanations and one-line advice per stall signature (mcp-wire.md)."""

EXPLANATION: dict[str, str] = {
    "retries-exhausted-while-down": "The client's reconnect attempts for this namespace all fell inside the server's downtime and failed; by the time the server was listening again the client had stopped trying, so the namespace stayed disconnected although the server was healthy.",
    "backoff-gave-up": "The client retried on a known backoff schedule, but the schedule ran out before the server came back. No attempt was made after the server was listening again.",
    "non-retried-status": "One attempt got a status the client treats as final (for example 404 from a route that was not mounted yet, 405, 401 or 403) and the client never tried again, although the server would have answered a little later.",
    "stale-session-loop": "After the restart the server no longer knows the old session id, so it answers every request that carries it with 404 (session not found). The MCP spec says the client must then start a new session with initialize without a session id; this client keeps re-sending the old id instead.",
    "reinit-with-stale-header": "The client did try to start over, but its initialize request still carried the old Mcp-Session-Id header, so the server rejected it. An initialize must be sent without a session id.",
    "resume-without-initialize": "After the restart the client resumed with a normal request on its old session id instead of initializing a new session, and no initialize ever followed.",
    "phantom-session": "A session id minted on an error response was adopted by the client without an initialize, so the session it uses does not exist on the server.",
    "initialized-missing": "initialize succeeded, but notifications/initialized was never sent, was sent after other requests, or was not answered 202, so the session never became ready.",
    "tools-never-relisted": "A new session was established, but the client never asked tools/list in it. It keeps a dead tool catalogue, which shows as tools disconnected.",
    "hung-request": "A request's response never arrived: the stream ended, or stayed open, with no JSON-RPC response, and the client waited on it.",
    "dead-pooled-socket": "The request was written on a pooled keep-alive connection that the server had already closed during the restart; it got a reset or no bytes back. Which namespace draws the dead socket is random, which is why one namespace out of several drops.",
    "get-conflict": "The GET stream reconnect was answered 409 Conflict because the server still held the old stream for the session, and the client gave up on the stream.",
    "reinit-once-gave-up": "After the failure the client tried to re-initialize exactly once; that attempt failed too (the server was still down, or a proxy answered for it), and the client stopped for good instead of backing off and trying again.",
    "call-lost-after-rebind": "The client re-initialized and set up a new session, but the call that the restart broke was never sent again, and nothing else was called in the new session.",
    "subscription-not-reissued": "The namespace's only traffic was its subscriptions/listen stream (2026-07-28). The restart ended that stream, and a sessionless stream cannot be resumed: the client must send subscriptions/listen again with a new id. It never did, so the namespace stays deaf to server notifications and looks disconnected. No SDK re-issues a listen by itself; it is the host's job.",
    "request-not-reissued": "A request whose response stream the restart broke was never sent again. In the 2026-07-28 revision there is no resumption: the client must re-issue the request with a new id, and this one sent nothing more.",
    "version-mismatch-loop": "Request after request was rejected with 400 for its protocol headers (-32020: MCP-Protocol-Version, Mcp-Method or Mcp-Name do not match the body; -32022: unsupported version; -32021: missing capability), and the client never changed what it sent: a client and a server of revisions that do not meet, e.g. an old client against a server that speaks only 2026-07-28.",
    "client-gave-up": "A sessionless (2026-07-28) client whose requests were refused while the server was down and that sent nothing once it was back. The official Python SDK 2.x client ends on the first connection error; only a host that builds a new client comes back, and this one did not.",
    "no-rebind": "The namespace was disrupted and never established a new session, but its traffic matches none of the known stall signatures.",
}

ADVICE: dict[str, str] = {
    "retries-exhausted-while-down": "Keep retrying with backoff until the server answers (or raise the retry count/maximum delay) rather than giving up after a fixed number of tries.",
    "backoff-gave-up": "Extend the backoff schedule (more retries or a longer cap) so it outlasts a typical restart.",
    "non-retried-status": "Treat 404 without a JSON-RPC session error (route not mounted), 502 and 503 as transient during restarts and retry them with backoff.",
    "stale-session-loop": "On 404 for a request with a session id, drop the id and send a fresh initialize without it (MCP spec, session management).",
    "reinit-with-stale-header": "Clear the stored session id before re-initializing; send initialize without Mcp-Session-Id.",
    "resume-without-initialize": "After a reconnect, start with initialize instead of resuming the old session id.",
    "phantom-session": "Only adopt an Mcp-Session-Id from a successful initialize response.",
    "initialized-missing": "Send notifications/initialized right after the initialize result and wait for its 202 before other requests.",
    "tools-never-relisted": "Call tools/list in every new session and replace the cached catalogue.",
    "hung-request": "Put a timeout on every request and retry or re-initialize when it fires.",
    "dead-pooled-socket": "Retry idempotent requests once on a fresh connection when a pooled socket fails with a reset or EOF.",
    "get-conflict": "Close the old GET stream (or wait for the server to drop it) and retry the GET with backoff after a 409.",
    "reinit-once-gave-up": "Keep retrying initialize with backoff until the server answers, rather than giving up after one failed re-initialize.",
    "call-lost-after-rebind": "Re-send (or fail explicitly to the caller) the requests that were in flight when the session broke, once the new session is ready.",
    "subscription-not-reissued": "Re-issue subscriptions/listen (with a new request id) whenever the stream ends, with backoff while the server is down.",
    "request-not-reissued": "When a request's stream breaks before its response, send the request again with a new id (2026-07-28 has no resumption).",
    "version-mismatch-loop": "Let the client negotiate (server/discover, fall back to initialize on a 4xx) instead of pinning a revision the server does not speak, and keep the MCP-* headers equal to the body.",
    "client-gave-up": "Build a new client (server/discover, tools/list, listen) with backoff when the old one ends on a connection error.",
    "no-rebind": "Look at the namespace's timeline in the HTML report (mcpsniff report) to see where it stopped.",
}

NEXT_CAPTURE: dict[str, str] = {
    "retrying": "capture until the client's retry schedule has played out (Claude Code's 1, 2, 4, 8, 16 s needs 31 s after the failure, plus the server's downtime)",
    "down": "keep capturing until the server is listening again and a few seconds more, so its return and the clients' next attempts are in the capture",
    "short": "keep capturing at least 35 s after the server is back (thresholds.give_up_after), or capture every namespace of the same client so the siblings can decide it",
}
