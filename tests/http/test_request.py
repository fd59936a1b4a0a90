"""Request heads of the HTTP side port, parsed with no socket: what is served, what is refused
and with which status."""

from __future__ import annotations

import pytest

from mq.http.request import MAX_QUERY_FIELDS, HttpError, parse_head


def refused(head: bytes, max_headers: int = 8) -> HttpError:
    with pytest.raises(HttpError) as e:
        parse_head(head, max_headers)
    return e.value


def test_a_get_with_a_query_and_headers() -> None:
    r = parse_head(b"GET /api/explain?id=42 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 8)
    assert (r.method, r.path, r.query) == ("GET", "/api/explain", {"id": "42"})
    assert r.headers == {"host": "x", "accept": "*/*"}


def test_exactly_max_headers_pass_and_one_more_is_431() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(8)) + b"\r\n"
    assert len(parse_head(head, 8).headers) == 8
    assert refused(head, 7).status == 431


@pytest.mark.parametrize(("head", "status"), [
    (b"\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS, or other garbage
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"POST /metrics HTTP/1.1\r\n\r\n", 405),
    (b"GET http://example.com/ HTTP/1.1\r\n\r\n", 400),
    (b"GET /a b HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413),
    (b"GET /?" + b"&".join(b"a%d=1" % i for i in range(MAX_QUERY_FIELDS + 1))
     + b" HTTP/1.1\r\n\r\n", 400),
])
def test_bad_heads_are_refused_with_a_status(head: bytes, status: int) -> None:
    assert refused(head).status == status


def test_a_refused_method_says_which_are_allowed() -> None:
    assert refused(b"DELETE / HTTP/1.1\r\n\r\n").headers == (("Allow", "GET, HEAD"),)
