package releases

import (
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// locationOf finds where an instance is reached from its namespace's
// Ingresses and Services, by the first rule that applies (objects in name
// order):
//
//  1. An Ingress: the first host of its rules, https when its tls lists
//     that host, with the rule's first path when not "/"; an Ingress
//     without a host, the address its controller published. Ingresses
//     with neither yet: not known yet.
//  2. A LoadBalancer Service: the address published for it, with its
//     first port unless 80. None yet: not known yet.
//  3. Another Service (not ExternalName) with a port: its in-cluster
//     address, http://NAME.NAMESPACE.svc:PORT.
//  4. Nothing to reach: known, with no location.
//
// found is false while the location is not known yet.
func locationOf(ings []networkingv1.Ingress, svcs []corev1.Service) (location string, found bool) {
	ings = slices.Clone(ings)
	slices.SortFunc(ings, func(a, b networkingv1.Ingress) int { return strings.Compare(a.Name, b.Name) })
	for _, ing := range ings {
		for _, r := range ing.Spec.Rules {
			if r.Host == "" || strings.HasPrefix(r.Host, "*") {
				continue
			}
			scheme := "http"
			for _, t := range ing.Spec.TLS {
				if slices.Contains(t.Hosts, r.Host) {
					scheme = "https"
				}
			}
			path := ""
			if r.HTTP != nil && len(r.HTTP.Paths) > 0 && r.HTTP.Paths[0].Path != "/" {
				path = r.HTTP.Paths[0].Path
			}
			return scheme + "://" + r.Host + path, true
		}
	}
	for _, ing := range ings {
		if addr := ingressAddress(ing.Status.LoadBalancer.Ingress); addr != "" {
			return "http://" + addr, true
		}
	}
	if len(ings) > 0 {
		return "", false
	}
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	pending := false
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		var addr string
		for _, in := range s.Status.LoadBalancer.Ingress {
			if addr = firstOf(in.Hostname, in.IP); addr != "" {
				break
			}
		}
		if addr == "" {
			pending = true
			continue
		}
		return withPort(addr, s.Spec.Ports), true
	}
	if pending {
		return "", false
	}
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeExternalName || len(s.Spec.Ports) == 0 {
			continue
		}
		return withPort(s.Name+"."+s.Namespace+".svc", s.Spec.Ports), true
	}
	return "", true
}

func ingressAddress(in []networkingv1.IngressLoadBalancerIngress) string {
	for _, i := range in {
		if a := firstOf(i.Hostname, i.IP); a != "" {
			return a
		}
	}
	return ""
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// withPort is an http URL of host at the first of ports (https at 443),
// the port left out when it is the scheme's.
func withPort(host string, ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "http://" + hostPort(host, "")
	}
	switch p := ports[0].Port; p {
	case 80:
		return "http://" + hostPort(host, "")
	case 443:
		return "https://" + hostPort(host, "")
	default:
		return "http://" + hostPort(host, strconv.Itoa(int(p)))
	}
}

func hostPort(host, port string) string {
	if port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]" // IPv6
		}
		return host
	}
	return net.JoinHostPort(host, port)
}
