"""A small TCP proxy the interop tests control: it forwards a loopback port to a broker, and
`cut()` drops every connection through it at once (both ends closed) and refuses new ones until
`resume()`. It runs in threads of the test process; `close()` stops it."""

from __future__ import annotations

import selectors
import socket
import threading


class TCPProxy:
    """Forwards 127.0.0.1:`port` (a free port unless given) to `target_host`:`target_port`."""

    def __init__(self, target_host: str, target_port: int, port: int = 0):
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = False
        self._closed = False
        self.connections = 0  # accepted and forwarded since start
        self.cuts = 0
        threading.Thread(target=self._accept, name=f"tcpproxy-{self.port}", daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._cut or self._closed
            if refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket):
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            self._drop(a, b)

    def _drop(self, a: socket.socket, b: socket.socket):
        with self._lock:
            self._pairs = [p for p in self._pairs if p != (a, b)]
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self):
        """Drops every connection (both ends see it closed) and refuses new ones until resume()."""
        with self._lock:
            self._cut = True
            self.cuts += 1
            pairs = list(self._pairs)
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def resume(self):
        """Accepts and forwards new connections again."""
        with self._lock:
            self._cut = False

    def close(self):
        with self._lock:
            self._closed = True
        self.cut()
        self._listener.close()
