//! The demo's upstream: an rmcp MCP server with three tools, one read (`list_notes`), two
//! write (`add_note`, `delete_all_notes`), behind idjag-mcp's server layer (it accepts only
//! access tokens of its resource authorization server), reading the caller from the verified
//! token in its tool handlers (`idjag_mcp::server::Caller`).

use std::sync::{Arc, Mutex};

use idjag_mcp::server::Caller;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;

/// One note and who wrote it.
#[derive(Debug, Clone)]
pub struct Note {
    /// The author (`sub` of the access token the gateway obtained for them).
    pub author: String,
    /// The text.
    pub text: String,
}

/// The notes every session of the server shares.
pub type NoteBook = Arc<Mutex<Vec<Note>>>;

/// `add_note`'s arguments.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct AddNote {
    /// The note's text.
    pub(crate) text: String,
}

/// The MCP server.
#[derive(Debug, Clone)]
pub struct NotesServer {
    notes: NoteBook,
    tool_router: rmcp::handler::server::router::tool::ToolRouter<Self>,
}

#[tool_router]
impl NotesServer {
    /// A server over `notes`.
    pub fn new(notes: NoteBook) -> Self {
        Self {
            notes,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "List every note (read).")]
    async fn list_notes(&self) -> Result<CallToolResult, ErrorData> {
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        let text = if notes.is_empty() {
            "No notes yet.".to_owned()
        } else {
            notes
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{}. {} (by {})", i + 1, n.text, n.author))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    #[tool(description = "Add a note (write). The author is the signed-in user.")]
    async fn add_note(
        &self,
        Parameters(AddNote { text }): Parameters<AddNote>,
        caller: Caller,
    ) -> Result<CallToolResult, ErrorData> {
        let author = caller.subject().as_str().to_owned();
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        notes.push(Note {
            author: author.clone(),
            text,
        });
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "Note {} added by {author}.",
            notes.len()
        ))]))
    }

    #[tool(description = "Delete every note (write, destructive).")]
    async fn delete_all_notes(&self) -> Result<CallToolResult, ErrorData> {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(CallToolResult::success(vec![ContentBlock::text(
            "All notes deleted.",
        )]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for NotesServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("notes", "1.0.0"))
            .with_instructions("A shared notebook. Behind idjag-gateway in the demo.")
    }
}
