"""The LLM crew: specialists in parallel over the evidence, then an incident commander.

Nothing here imports crewai at module import time; `runner.run_crew` and
`followup.answer_with_llm` import it when they run, so the web process never
loads it.
"""
