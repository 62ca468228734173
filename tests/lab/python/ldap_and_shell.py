#!/usr/bin/env python3
"""Benign: a process that is no JVM talks LDAP and runs a shell.

Binds anonymously to the lab's directory (127.0.0.1:1389 by default), searches for
uid=bob,ou=people,dc=lab,dc=example, unbinds, then runs /bin/sh -c 'echo python-ok'.
The detector watches JVMs and what they start: none of this may alert.

Usage: ldap_and_shell.py [HOST [PORT]]. Prints "ldap ok" and "sh ok"; exits 0 when both worked.
Standard library only; every step has a 5 s timeout.
"""

import socket
import subprocess
import sys


def tlv(tag: int, value: bytes) -> bytes:
    """One BER element (short or two-byte long length form)."""
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    if len(value) < 0x100:
        return bytes([tag, 0x81, len(value)]) + value
    return bytes([tag, 0x82, len(value) >> 8, len(value) & 0xFF]) + value


def message(msg_id: int, op: bytes) -> bytes:
    return tlv(0x30, tlv(0x02, bytes([msg_id])) + op)


def read_element(sock: socket.socket) -> bytes:
    """Reads one whole BER element (header included) from the socket."""
    head = recv_exact(sock, 2)
    length = head[1]
    extra = b""
    if length & 0x80:
        extra = recv_exact(sock, length & 0x7F)
        length = int.from_bytes(extra, "big")
    return head + extra + recv_exact(sock, length)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def op_tag(element: bytes) -> int:
    """The protocolOp tag of an LDAPMessage: after the SEQUENCE header and the message id."""
    i = 2 if element[1] < 0x80 else 2 + (element[1] & 0x7F)
    i += 2 + element[i + 1]  # skip INTEGER messageID
    return element[i]


def ldap(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.settimeout(5)
        # BindRequest: version 3, name "", simple auth "".
        sock.sendall(message(1, tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, b"") + tlv(0x80, b""))))
        if op_tag(read_element(sock)) != 0x61:
            raise RuntimeError("no BindResponse")
        # SearchRequest: base object, never deref, no limits, (objectClass=*), all attributes.
        base = b"uid=bob,ou=people,dc=lab,dc=example"
        search = (
            tlv(0x04, base)
            + tlv(0x0A, b"\x00")
            + tlv(0x0A, b"\x00")
            + tlv(0x02, b"\x00")
            + tlv(0x02, b"\x00")
            + tlv(0x01, b"\x00")
            + tlv(0x87, b"objectClass")
            + tlv(0x30, b"")
        )
        sock.sendall(message(2, tlv(0x63, search)))
        entries = 0
        while True:
            tag = op_tag(read_element(sock))
            if tag == 0x64:
                entries += 1
            elif tag == 0x65:
                break
        sock.sendall(message(3, tlv(0x42, b"")))
    if entries != 1:
        raise RuntimeError(f"expected one entry, got {entries}")
    print("ldap ok", flush=True)


def shell() -> None:
    out = subprocess.run(
        ["/bin/sh", "-c", "echo python-ok"], capture_output=True, text=True, timeout=5, check=True
    )
    if out.stdout.strip() != "python-ok":
        raise RuntimeError(f"unexpected shell output {out.stdout!r}")
    print("sh ok", flush=True)


def main() -> int:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1389
    ldap(host, port)
    shell()
    return 0


if __name__ == "__main__":
    sys.exit(main())
