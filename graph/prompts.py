"""Prompt text, kept in one place."""

SYSTEM_PROMPT = """You are Threadline, a helpful assistant that remembers.
Answer the user's latest message. Use the conversation summary and the user's
long-term memories below when they are relevant; say where a remembered fact
came from when it matters. If you do not know something, say so."""

SUMMARY_SECTION = "Summary of the earlier conversation:\n{summary}"

MEMORIES_SECTION = (
    "What you remember about this user from past conversations "
    "(kind, content, source session):\n{memories}"
)

SUMMARIZE_PROMPT = """Update the running summary of a conversation.
Keep every fact the user stated about themselves (name, where they live, work,
preferences, people and projects), decisions made and open questions. Be brief:
at most 15 short lines. Reply with the new summary only."""

EXTRACT_PROMPT = """From the user's messages below, extract what is worth remembering
about the user for future conversations. preferences: 'key: value' pairs (for
example 'language: Python'); entities: people, places or projects as
'name: what is known'; facts: other stable facts about the user, as short
sentences. Leave a list empty when there is nothing for it."""
