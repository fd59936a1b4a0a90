"""Clustered mode: several brokers over one Postgres log, etcd for membership and slot owners.

The pure parts (slots.py, assign.py, slotmap.py, stable.py, store_watch.py) import no asyncio,
no sockets and nothing of the server; etcd.py and member.py are the asyncio side.
"""
