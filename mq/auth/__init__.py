"""Who may do what: users with hashed secrets and per-queue permissions, read from a TOML file.

Pure: no sockets, no event loop. The server asks `Users` whether a user may do something to a
queue; `mq user` edits the file through `save_users`.
"""
