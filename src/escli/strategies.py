"""How a request is spread over several clusters (es/routing.py); with several and none named: failover.

The one spelling of each name: routing, completion, the config check (config_schema.py) and the messages (settings.py)
use these. A module of its own so that settings and config_schema both read it without importing each other.
"""

FAILOVER, ROUND_ROBIN, WEIGHTED, FAN_OUT = "failover", "round-robin", "weighted", "fan-out"
STRATEGIES = (FAILOVER, ROUND_ROBIN, WEIGHTED, FAN_OUT)
STRATEGY_CHOICES = f"choose {', '.join(STRATEGIES[:-1])} or {STRATEGIES[-1]}"
