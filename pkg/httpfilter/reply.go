package httpfilter

import (
	"bufio"
	"fmt"
	"net/http"
)

// reply writes a response of our own, such as 502 when an upstream cannot be reached, with
// msg as its plain-text body so that the developer sees why. closing announces that we close
// the connection after it.
func reply(w *bufio.Writer, status int, msg string, closing bool) error {
	body := fmt.Sprintf("remocal: %s\n", msg)
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	fmt.Fprintf(w, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n", len(body))
	if closing {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	w.WriteString(body)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("reply %d: %w", status, err)
	}
	return nil
}
