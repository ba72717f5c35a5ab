package sandbox_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func ExampleNew() {
	srv := httptest.NewServer(sandbox.New(sandbox.Options{}))
	defer srv.Close()

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/links/"+sandbox.LinkDeleted+"/identity", nil)
	req.Header.Set("X-Client-Id", sandbox.DefaultClientID)
	req.Header.Set("X-Client-Secret", sandbox.DefaultClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode)
	fmt.Println(string(body))
	// Output:
	// 410
	// {"error_code":"link_error.deleted","error_message":"This link was deleted at some earlier time.","documentation_url":"https://docs.moneykit.com/api/reference/link-errors"}
}
