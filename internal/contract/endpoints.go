package contract

import (
	"fmt"
	"net/url"
	"strings"
)

// Endpoints are a launcher's URLs. /info and /health are found next to POST /predict.
type Endpoints struct {
	Predict, Base, Health, Info string
}

// ParsePredictURL derives a launcher's endpoints from its predict URL, the full URL of
// POST /predict (a trailing slash is tolerated; query and fragment are dropped). A URL with
// no path at all (http://node12:8000) is taken as the launcher's base.
func ParsePredictURL(predictURL string) (Endpoints, error) {
	u, err := url.Parse(predictURL)
	if err != nil {
		return Endpoints{}, fmt.Errorf("parse predict URL %q: %w", predictURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Endpoints{}, fmt.Errorf("predict URL %q: scheme must be http or https (e.g. http://127.0.0.1:8000/predict)", predictURL)
	}
	if u.Host == "" {
		return Endpoints{}, fmt.Errorf("predict URL %q has no host", predictURL)
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case p == "":
	case strings.HasSuffix(p, "/predict"):
		p = strings.TrimSuffix(p, "/predict")
	default:
		return Endpoints{}, fmt.Errorf("predict URL %q does not end in /predict", predictURL)
	}
	u.Path = p
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	base := u.String()
	return Endpoints{Predict: base + "/predict", Base: base, Health: base + "/health", Info: base + "/info"}, nil
}
