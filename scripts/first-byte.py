#!/usr/bin/env python3
"""How soon TLS clients speak after their connection is accepted, which bounds chatd's greeting
delay: a connection silent for 200 ms is taken for an nc or telnet user and greeted. Runs each
client 10 times against a loopback listener that only records the first byte's arrival."""
import socket
import subprocess
import time

CLIENTS = [
    ["openssl", "s_client", "-quiet", "-connect", "127.0.0.1:PORT"],
    ["socat", "-", "OPENSSL:127.0.0.1:PORT,verify=0"],
    ["ncat", "--ssl", "127.0.0.1", "PORT"],
]


def first_byte_ms(cmd):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = str(listener.getsockname()[1])
        client = subprocess.Popen([arg.replace("PORT", port) for arg in cmd],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            conn, _ = listener.accept()
            with conn:
                accepted = time.monotonic()
                conn.settimeout(3)
                try:
                    conn.recv(16)
                except socket.timeout:
                    return None
                return (time.monotonic() - accepted) * 1000
        finally:
            client.kill()
            client.wait()


for cmd in CLIENTS:
    gaps = [first_byte_ms(cmd) for _ in range(10)]
    spoke = sorted(g for g in gaps if g is not None)
    if spoke:
        print(f"{cmd[0]:8} first byte {spoke[len(spoke) // 2]:.2f} ms after accept (median), "
              f"{spoke[-1]:.2f} ms at most, {len(spoke)}/10 spoke")
    else:
        print(f"{cmd[0]:8} sent nothing in 3 s")
