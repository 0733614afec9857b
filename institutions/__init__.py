"""institutions: rules above the individual — voting, sanctions, monitoring, elections, leaders, constitutions."""
