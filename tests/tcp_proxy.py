"""A TCP proxy the tests can cut or partition, to make a real server unreachable on demand."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

from sqlalchemy.engine import make_url

from worker.settings import Settings


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``cut()`` drops and refuses connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._partitioned = threading.Event()  # set: forwarding; clear: partitioned
        self._partitioned.set()
        self._replying = threading.Event()  # set: forwarding replies; clear: held
        self._replying.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def cut(self) -> None:
        """Close every forwarded connection; new ones are closed at once."""
        self._open = False
        self._partitioned.set()  # a reset ends a partition: the closes get through
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def partition(self) -> None:
        """A silent partition: nothing is forwarded and nothing is closed, so each side
        waits on a connection that looks open (a half-open network). New connections
        are accepted and hang too."""
        self._partitioned.clear()

    def restore(self) -> None:
        self._open = True
        self._partitioned.set()

    def hold_replies(self) -> None:
        """Forward what clients send, but hold what the server answers (a broker that
        takes messages and is slow to confirm them) until ``release_replies``."""
        self._replying.clear()

    def release_replies(self) -> None:
        self._replying.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b, replies in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, replies), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, replies: bool = False) -> None:
        try:
            while data := source.recv(65536):
                self._partitioned.wait()  # held while partitioned: the bytes are "in flight"
                if replies:
                    self._replying.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._partitioned.wait()  # a close does not cross a partition either
            for sock in (source, sink):
                # shutdown first: the other direction's thread still blocks in recv() on
                # these sockets, and a bare close() would not send the FIN until it returns.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def broker_through_proxy(settings: Settings) -> tuple[TcpProxy, Settings]:
    """A proxy in front of the settings' RabbitMQ, and settings that go through it."""
    url = make_url(settings.broker_url.replace("amqp://", "postgresql://", 1))
    port = url.port or 5672
    proxy = TcpProxy((url.host or "127.0.0.1", port))
    proxied = settings.broker_url.replace(f":{port}", f":{proxy.port}", 1)
    return proxy, settings.model_copy(update={"broker_url": proxied})
