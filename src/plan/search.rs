//! Maximum sustainable rate, fewest replicas, ranking and the Pareto frontier.
