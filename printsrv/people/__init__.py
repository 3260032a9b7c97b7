"""People: users, aliases, UUIDs and passwords, groups and their defaults, user sources
(internal, LDAP / Active Directory) and their sync, one-time web-login tokens."""
