"""agent: the LangGraph assistant, its AgentSession facade and the Textual chat (issue 4); empty until then."""
