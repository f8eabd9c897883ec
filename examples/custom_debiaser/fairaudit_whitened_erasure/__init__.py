"""An example debiaser plugin written as a fairaudit user would write one."""
