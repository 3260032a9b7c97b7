"""A private OpenLDAP slapd for tests: its own directory, a loopback port, a small tree.

The tree (dc=example,dc=edu) has people with passwords and groups, one of them nested:

    ou=people: john (AzFi7I), janet (s3cret), rijk (pw-rijk), olga (pw-olga)
    ou=groups: staff = {john, janet}; students = {rijk}; everyone = {staff, students, olga}
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BASE_DN = "dc=example,dc=edu"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "ldap-admin-secret"
PEOPLE = {
    "john": ("John Doe", "john@example.edu", "AzFi7I"),
    "janet": ("Janet Jones", "janet@example.edu", "s3cret"),
    "rijk": ("Rijk de Vries", "rijk@example.edu", "pw-rijk"),
    "olga": ("Olga Ivanova", "olga@example.edu", "pw-olga"),
}
GROUPS = {
    "staff": ["uid=john,ou=people", "uid=janet,ou=people"],
    "students": ["uid=rijk,ou=people"],
    "everyone": ["cn=staff,ou=groups", "cn=students,ou=groups", "uid=olga,ou=people"],
}

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {base}/slapd.pid
loglevel none
database mdb
maxsize 10485760
suffix "{base_dn}"
rootdn "{admin_dn}"
rootpw {admin_password}
directory {base}/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def _ldif() -> str:
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example School\n",
        f"dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for uid, (name, mail, password) in PEOPLE.items():
        entries.append(
            f"dn: uid={uid},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {name}\nsn: {name.split()[-1]}\nmail: {mail}\nuserPassword: {password}\n"
        )
    for cn, members in GROUPS.items():
        lines = "".join(f"member: {m},{BASE_DN}\n" for m in members)
        entries.append(
            f"dn: cn={cn},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: {cn}\n" + lines
        )
    return "\n".join(entries)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateLdap:
    """slapd on 127.0.0.1:port with the tree above, started and stopped by the tests."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="slapd-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateLdap:
        (self.base / "data").mkdir(exist_ok=True)
        conf = self.base / "slapd.conf"
        conf.write_text(
            SLAPD_CONF.format(
                base=self.base, base_dn=BASE_DN, admin_dn=ADMIN_DN, admin_password=ADMIN_PASSWORD
            )
        )
        if not (self.base / "data" / "data.mdb").exists():
            ldif = self.base / "tree.ldif"
            ldif.write_text(_ldif())
            subprocess.run(
                ["slapadd", "-f", str(conf), "-l", str(ldif)], check=True, capture_output=True
            )
        self.process = subprocess.Popen(
            ["slapd", "-d", "0", "-f", str(conf), "-h", f"ldap://127.0.0.1:{self.port}/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RuntimeError(f"slapd did not start: {err}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def config(self) -> dict[str, str]:
        """The printsrv config properties that point the LDAP user source at this server."""
        return {
            "auth.method": "ldap",
            "ldap.host": "127.0.0.1",
            "ldap.port": str(self.port),
            "ldap.basedn": BASE_DN,
            "ldap.admin.dn": ADMIN_DN,
            "ldap.admin.password": ADMIN_PASSWORD,
        }


if __name__ == "__main__":  # a manual check: python tests/slapd.py
    ldap = PrivateLdap().start()
    print(f"slapd on {ldap.port}, base {ldap.base}; pid {ldap.process.pid if ldap.process else 0}")
    os.system(f"ldapsearch -x -H ldap://127.0.0.1:{ldap.port} -b {BASE_DN} '(cn=everyone)'")  # noqa: S605
    ldap.close()
