package guard

import "github.com/aegis-platform/aegis/adminapi"

// Alert is one incident: a rule that fired on a target, what it counted
// and what it did. A rule firing again on the same target while the
// incident is open (until Until) raises no new alert, on any server. It
// is declared once, in the admin API's shape: the guard hands it to
// OnAlert, the alert stream stores it, the admin API lists it and a
// webhook receives it, all as the same JSON.
type Alert = adminapi.GuardAlert
