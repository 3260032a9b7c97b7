"""People's tables: users, their aliases, groups and memberships; and the web login's
(migration 0003_web_login, branch "web"): spent one-time tokens (`printsrv.people.tokens`),
web sessions (`printsrv.people.sessions`) and login throttling (`printsrv.people.throttle`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from financial.schema import MoneyType
from printsrv.platform.models import Base, UTCDateTime, utcnow


class User(Base):
    """A person who prints, from the internal user source (or synchronised from LDAP)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    uuid_hash: Mapped[str | None] = mapped_column(String(100), default=None)
    uuid_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Card and ID numbers identify a person at a printer's card reader or keypad.
    card_number: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    id_number: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    pin_hash: Mapped[str | None] = mapped_column(String(100), default=None)
    email_other: Mapped[str] = mapped_column(Text, default="")  # one address a line
    # A deleted user can no longer log in or print; the row stays for the history.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Where the user comes from: "internal" (made here) or "ldap" (synchronised).
    source: Mapped[str] = mapped_column(String(20), default="internal")

    aliases: Mapped[list[UserAlias]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserAlias.alias"
    )

    # The admin console's user search matches the start of these, in any case
    # (printsrv.operations.directory, migration 0021_admin2_user_search): on PostgreSQL a
    # `text_pattern_ops` index makes `lower(x) LIKE 'abc%'` one index range whatever the
    # database's collation. SQLite has none of them (its reflection cannot read an
    # expression index, and a search there is a scan of a small table).
    __table_args__ = (
        Index(
            "ix_users_search_user_name",
            func.lower(user_name).label("lower_user_name"),
            postgresql_ops={"lower_user_name": "text_pattern_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_users_search_full_name",
            func.lower(full_name).label("lower_full_name"),
            postgresql_ops={"lower_full_name": "text_pattern_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_users_search_email",
            func.lower(email).label("lower_email"),
            postgresql_ops={"lower_email": "text_pattern_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_users_search_card_number",
            func.lower(card_number).label("lower_card_number"),
            postgresql_ops={"lower_card_number": "text_pattern_ops"},
        ).ddl_if(dialect="postgresql"),
    )
    groups: Mapped[list[UserGroup]] = relationship(
        secondary="user_group_member", back_populates="members", order_by="UserGroup.name"
    )

    def __repr__(self) -> str:
        return f"User({self.user_name!r}, enabled={self.enabled})"


class UserAlias(Base):
    """Another name under which a user is known (e.g. a student number), mapped on input."""

    __tablename__ = "user_alias"

    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="aliases")


class UserGroup(Base):
    """A named group of users (a class, a department)."""

    __tablename__ = "user_group"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Defaults for members' new USER accounts (printsrv.people.group_defaults); NULL: none set.
    initial_credit: Mapped[Decimal | None] = mapped_column(MoneyType())
    credit_limit_policy: Mapped[str | None] = mapped_column(String(10))
    credit_limit: Mapped[Decimal | None] = mapped_column(MoneyType())

    members: Mapped[list[User]] = relationship(
        secondary="user_group_member", back_populates="groups", order_by="User.user_name"
    )


class UserGroupMember(Base):
    """Membership of one user in one group."""

    __tablename__ = "user_group_member"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SpentLoginToken(Base):
    """A one-time login token that has logged someone in, so it is refused from now on.

    Keyed by the SHA-256 of the token's bytes: the primary key makes a second use fail on
    every worker and machine, even when two of them try at the same moment.
    """

    __tablename__ = "spent_login_token"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100))
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Past this moment no configuration can make the token valid again; then the row goes.
    purge_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebSession(Base):
    """A person logged in to the web app; the cookie holds the id, the row its SHA-256.

    Deleting the row logs the person out everywhere at once.
    """

    __tablename__ = "web_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    login_method: Mapped[str] = mapped_column(String(20))
    client_address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed web logins in the current window, per user name ("user:...") or address ("addr:...").

    A fixed window: the first failure after the window has passed starts a new one.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AdminSession(Base):
    """Someone logged in to the admin console at /admin (migration 0019_admin_console).

    Apart from `web_session`: the REST admin (`api.restful.auth.username`) has no user row,
    and an admin session must never open the user web app nor the other way round. The
    cookie holds a random id, the row its SHA-256; deleting the row logs out everywhere.

    principal: the REST admin's name, or the user's name for a member of `admin.web.group`.
    user_id:   that user (NULL for the REST admin); the session ends with the user's row.
    """

    __tablename__ = "admin_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
