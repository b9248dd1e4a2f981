"""A minimal socketcand server: the ECU's python-can ``socketcand`` bus connects here, and every frame the ECU
sends is printed as a JSON line ``{"id": ..., "data": "hex"}``; prints ``listening`` once ready.

The handshake is the one python-can's client expects (``< hi >``, ``< open CHANNEL >`` / ``< ok >``,
``< rawmode >`` / ``< ok >``); frames arrive as ``< send ID LENGTH BYTE... >`` in hexadecimal.
Usage: ``python frame_listener.py HOST PORT``.
"""

from __future__ import annotations

import json
import socket
import sys


def _serve(connection: socket.socket) -> None:
    connection.sendall(b"< hi >")
    buffer = ""
    answered = 0
    while chunk := connection.recv(4096):
        buffer += chunk.decode("ascii")
        while "<" in buffer and ">" in buffer[buffer.index("<") :]:
            start = buffer.index("<")
            end = buffer.index(">", start)
            words, buffer = buffer[start + 1 : end].split(), buffer[end + 1 :]
            if words and words[0] in ("open", "rawmode") and answered < 2:
                connection.sendall(b"< ok >")
                answered += 1
            elif words and words[0] == "send":
                length = int(words[2], 16)
                data = bytes(int(byte, 16) for byte in words[3 : 3 + length])
                print(json.dumps({"id": int(words[1], 16), "data": data.hex()}), flush=True)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_server((host, port)) as server:
        print("listening", flush=True)
        while True:
            connection, _ = server.accept()
            with connection:
                try:
                    _serve(connection)
                except (OSError, UnicodeDecodeError, ValueError):
                    continue


if __name__ == "__main__":
    main()
