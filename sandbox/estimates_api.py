"""A simulator of Uber's ride estimate endpoint, as the trip-time pipeline called it:

    POST /v1.2/requests/estimate   Authorization: Bearer <token>
    {"start_latitude", "start_longitude", "end_latitude", "end_longitude"}
    -> {"fare": {"value", "currency_code", ...}, "trip": {"distance_estimate" (miles),
        "duration_estimate" (seconds), "distance_unit": "mile"}, "pickup_estimate"}

Answers are deterministic: from the geodesic distance, the hour of day and a seed. A wrong token
gets 401. Past `rate_limit` requests in `rate_window` seconds (Uber's ~100 an hour) it answers
429 with Retry-After. For tests, `fail_next` makes the next requests answer 503 and
`throttle_next` 429 (Retry-After: 1, and 429 again to a request that comes sooner),
`latency_seconds` delays every answer (a slow API, so a fault can land between calls), and every
estimate request is logged with its X-Request-Tag and status (GET /_requests returns the log).

    python -m sandbox.estimates_api --port 8091 --token secret \
        [--host 0.0.0.0 --rate-limit 100 --rate-window 3600]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METERS_PER_MILE = 1609.344


def simulated_estimate(body: dict, hour: int, seed: int) -> dict:
    from geographiclib.geodesic import Geodesic

    meters = Geodesic.WGS84.Inverse(
        body["start_latitude"], body["start_longitude"], body["end_latitude"], body["end_longitude"]
    )["s12"]
    # Roads are longer than the straight line; traffic is slower at rush hours.
    road = meters * 1.3
    rush = 1.6 if hour in (7, 8, 9, 17, 18, 19) else 1.0
    key = json.dumps([round(meters, 1), hour, seed])
    noise = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF  # 0..1, stable
    duration = road / (8.0 / rush) + 120 * noise  # ~29 km/h, slower at rush hour, + pickup slack
    price = round(59 + 0.011 * road + 6.5 * duration / 60 * (1 + 0.3 * (rush > 1)), 0)
    return {
        "fare": {"value": price, "currency_code": "RUB", "display": f"{price:.0f} RUB", "fare_id": key[:16]},
        "trip": {
            "distance_unit": "mile",
            "distance_estimate": round(road / METERS_PER_MILE, 2),
            "duration_estimate": int(round(duration)),
        },
        "pickup_estimate": 2 + int(noise * 6),
    }


class EstimatesApi:
    def __init__(self, token: str, port: int = 0, seed: int = 7, rate_limit: int = 100,
                 rate_window: float = 3600.0, clock=time.time, host: str = "127.0.0.1"):  # fmt: skip
        self.token = token
        self.seed = seed
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.clock = clock
        self.fail_next = 0
        self.throttle_next = 0  # the next requests answer 429 with Retry-After: 1
        self.latency_seconds = 0.0
        self._throttled_until = 0.0
        self.requests: list[dict] = []
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> EstimatesApi:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_tagged(self, tag: str) -> list[dict]:
        return [r for r in self.requests if r["tag"] == tag]

    def _answer(self, headers, body: dict) -> tuple[int, dict, dict]:
        """The answer to one request, recorded with its status in `requests`."""
        entry = {"at": self.clock(), "tag": headers.get("X-Request-Tag", "")}
        status, reply_headers, payload = self._decide(headers, body, entry["at"])
        with self._lock:
            self.requests.append({**entry, "body": body, "status": status})
        return status, reply_headers, payload

    def _decide(self, headers, body: dict, now: float) -> tuple[int, dict, dict]:
        with self._lock:
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 401, {}, {"message": "Invalid OAuth 2.0 credentials provided.", "code": "unauthorized"}
            if self.throttle_next > 0:  # a limit of a second, enforced: calling back sooner gets 429
                self.throttle_next -= 1
                self._throttled_until = time.monotonic() + 1
            if time.monotonic() < self._throttled_until:
                return 429, {"Retry-After": "1"}, {"message": "Rate limit exceeded", "code": "rate_limited"}
            while self._recent and self._recent[0] <= now - self.rate_window:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                retry = max(1, math.ceil(self._recent[0] + self.rate_window - now))
                return (
                    429,
                    {"Retry-After": str(retry)},
                    {"message": "Rate limit exceeded", "code": "rate_limited"},
                )
            self._recent.append(now)
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, {}, {"message": "Service temporarily unavailable", "code": "service_unavailable"}
        try:
            hour = dt.datetime.fromtimestamp(now, dt.UTC).hour
            return 200, {}, simulated_estimate(body, hour, self.seed)
        except (KeyError, TypeError, ValueError):
            return 422, {}, {"message": "start and end coordinates are required", "code": "validation_failed"}

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                if self.path.split("?")[0] != "/v1.2/requests/estimate":
                    return self._reply(404, {}, {"message": "not found"})
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._reply(400, {}, {"message": "body is not JSON"})
                time.sleep(api.latency_seconds)
                self._reply(*api._answer(self.headers, body))

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/_requests":
                    return self._reply(200, {}, api.requests)
                self._reply(404, {}, {"message": "not found"})

            def _reply(self, status: int, headers: dict, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate-limit", type=int, default=100)
    parser.add_argument("--rate-window", type=float, default=3600.0)
    args = parser.parse_args()
    api = EstimatesApi(args.token, args.port, args.seed, args.rate_limit, args.rate_window, host=args.host)
    print(f"estimates API simulator on {args.host}:{api._server.server_address[1]}", flush=True)
    try:
        api._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
