"""agent: the chat. A LangGraph agent over faderwise's tools (``tools.py``, acting on a session's
``Workspace``), driven by the offline planner or a real LLM (``llm.py``), exposed as one
``AgentSession`` (``session.py``) that the Textual app (``tui.py``) and scripted runs
(``script.py``) share; sessions persist in SQLite (``store.py``)."""
