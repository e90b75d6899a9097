// What the interop clients share: the OAuth names they check, the check counter and its
// messages, and a fetch that records the requests the SDK sends.

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';

let checks = 0;

/** One check held. */
export function ok(what) {
    checks += 1;
    console.log(`ok - ${what}`);
}

/** The closing line: how many checks held. */
export function summary() {
    console.log(`${checks} checks passed`);
}

/**
 * A fetch that records every request the SDK sends whose URL `keep(url, init)` accepts: its
 * URL, method, headers, body and the body read as a form.
 */
export function recordingFetch(keep) {
    const requests = [];
    const fetchFn = async (input, init = {}) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        if (keep(url, init)) {
            const body = typeof init.body === 'string' ? init.body : init.body?.toString();
            requests.push({
                url: url.href,
                method: init.method ?? 'GET',
                headers: new Headers(init.headers),
                form: new URLSearchParams(body ?? ''),
                body,
            });
        }
        return fetch(input, init);
    };
    return { fetchFn, requests };
}

/** For `recordingFetch`: the requests with a body to a token endpoint. */
export function tokenRequest(url, init) {
    return url.pathname.endsWith('/token') && init.body !== undefined;
}
