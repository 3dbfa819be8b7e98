"""The one SQLite file: the :class:`Store` actor, its migrations and messages, and :class:`Journal`.

One Store actor owns the database (WAL, ``BEGIN IMMEDIATE``, migrations by
``user_version``, owner-only permissions) and batches writes into group commits. The run
journal is a set of append-only streams with optimistic concurrency (``expected_seq``).
"""

from actors.store._messages import (
    JournalAppend,
    JournalAppended,
    JournalEntries,
    JournalEntry,
    JournalEvent,
    JournalRead,
    JournalStreamList,
    JournalStreams,
    SqlValue,
    StoreInsert,
    StoreInserted,
    StoreQuery,
    StoreRows,
    StoreStats,
    StoreStatsQuery,
    StreamInfo,
)
from actors.store._store import Journal, Store, StoreError, default_db_path

__all__ = [
    "Journal",
    "JournalAppend",
    "JournalAppended",
    "JournalEntries",
    "JournalEntry",
    "JournalEvent",
    "JournalRead",
    "JournalStreamList",
    "JournalStreams",
    "SqlValue",
    "Store",
    "StoreError",
    "StoreInsert",
    "StoreInserted",
    "StoreQuery",
    "StoreRows",
    "StoreStats",
    "StoreStatsQuery",
    "StreamInfo",
    "default_db_path",
]
