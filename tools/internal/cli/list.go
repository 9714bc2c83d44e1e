package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// listFlags page a list: by default every page is fetched and shown as
// one list; --page-size or --page-token fetch one page as the server
// answers it.
type listFlags struct {
	pageSize  int32
	pageToken string
}

func (l *listFlags) add(cmd *cobra.Command) {
	cmd.Flags().Int32Var(&l.pageSize, "page-size", 0, "fetch one page of at most this many items (default: every page)")
	cmd.Flags().StringVar(&l.pageToken, "page-token", "", "fetch the page after the one that answered this next_page_token")
}

// maxPages bounds a list that follows next_page_token.
const maxPages = 1000

// list fetches the list req names and returns it as one answer whose
// items field holds every page's items, unchanged.
func (a *app) list(ctx context.Context, c *client, req request, items string, l *listFlags) ([]byte, error) {
	if req.query == nil {
		req.query = map[string][]string{}
	}
	if l.pageSize > 0 || l.pageToken != "" {
		if l.pageSize > 0 {
			req.query.Set("page_size", strconv.Itoa(int(l.pageSize)))
		}
		if l.pageToken != "" {
			req.query.Set("page_token", l.pageToken)
		}
		resp, err := c.do(ctx, req)
		if err != nil {
			return nil, err
		}
		if !a.structured() {
			var p struct {
				Next string `json:"next_page_token"`
			}
			if json.Unmarshal(resp.body, &p) == nil && p.Next != "" {
				fmt.Fprintf(a.env.Stderr, "More: --page-token %s\n", p.Next)
			}
		}
		return resp.body, nil
	}
	req.query.Set("page_size", "500")
	var merged map[string]json.RawMessage
	var all []json.RawMessage
	for range maxPages {
		resp, err := c.do(ctx, req)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return nil, fmt.Errorf("read the server's answer: %w", err)
		}
		var its []json.RawMessage
		if raw, ok := page[items]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &its); err != nil {
				return nil, fmt.Errorf("read the server's answer: %s: %w", items, err)
			}
		}
		all = append(all, its...)
		var next string
		if raw, ok := page["next_page_token"]; ok {
			_ = json.Unmarshal(raw, &next)
		}
		if merged == nil {
			merged = page
		}
		if next == "" {
			if all == nil {
				all = []json.RawMessage{}
			}
			b, err := json.Marshal(all)
			if err != nil {
				return nil, err
			}
			merged[items] = b
			merged["next_page_token"] = json.RawMessage(`""`)
			return json.Marshal(merged)
		}
		req.query.Set("page_token", next)
	}
	return nil, fmt.Errorf("the list goes on past %d pages: use --page-size and --page-token", maxPages)
}
