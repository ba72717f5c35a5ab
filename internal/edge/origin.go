package edge

// AllowsOrigin reports whether the policy lets a browser page of origin
// (the Origin header, exact) call: a listed origin, or on the sandbox any
// http://localhost or http://127.0.0.1 port. WebSocket upgrades, which
// browsers send cross-site without a preflight, are checked with it.
func (p *CORSPolicy) AllowsOrigin(origin string) bool {
	if p == nil || origin == "" {
		return false
	}
	for _, o := range p.Origins {
		if o == origin {
			return true
		}
	}
	return p.LocalhostAnyPort && isLocalhostOrigin(origin)
}
